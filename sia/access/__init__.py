"""Who may do what: API keys with roles, stored hashed beside the alerts."""
