"""Which role may call which route: one table for the whole API.

Every route the app serves must be in this table (a test fails for one that is not), so
a new route cannot ship without someone deciding who may call it. `PUBLIC` routes take
no key: probes, the API description, and the feedback endpoints that carry a signature
of their own (Slack's request signing, signed email links), and the web console's, which
take a session cookie instead: `SESSION_ROLES` says which roles each console page needs.
"""

from __future__ import annotations

from typing import Final

from sia.access.keys import Role

PUBLIC: Final = frozenset[Role]()  # no key needed
ANY_KEY: Final = frozenset[Role]({"crm", "rep", "manager", "admin"})
READERS: Final = frozenset[Role]({"rep", "manager", "admin"})

ROUTE_ROLES: Final[dict[tuple[str, str], frozenset[Role]]] = {
    # operations
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("GET", "/v1/status"): ANY_KEY,
    # ingestion
    ("POST", "/v1/events"): frozenset({"crm", "admin"}),
    ("GET", "/v1/rejects"): frozenset({"crm", "admin"}),
    # reading
    ("GET", "/v1/alerts"): READERS,
    ("GET", "/v1/alerts/{alert_id}"): READERS,
    ("GET", "/v1/customers/{customer_id}"): READERS,
    # feedback
    ("POST", "/v1/alerts/{alert_id}/feedback"): READERS,
    ("POST", "/slack/interactivity"): PUBLIC,  # Slack's request signature
    ("GET", "/feedback/email"): PUBLIC,  # a signed, expiring link
    ("POST", "/feedback/email"): PUBLIC,
    # thresholds
    # a rep key: its own effective values; raise its own firing thresholds or mute a
    # detector for itself (sia/service/rep_thresholds.py)
    ("GET", "/v1/thresholds"): READERS,
    ("PUT", "/v1/thresholds"): READERS,
    ("GET", "/v1/thresholds/history"): frozenset({"manager", "admin"}),
    # a rep key previews its own changes and sees its own alerts only
    ("POST", "/v1/thresholds/preview"): frozenset({"rep", "manager", "admin"}),
    ("POST", "/v1/thresholds/rollback"): frozenset({"manager", "admin"}),
    # keys
    ("GET", "/v1/keys"): frozenset({"admin"}),
    ("POST", "/v1/keys"): frozenset({"admin"}),
    ("DELETE", "/v1/keys/{key_id}"): frozenset({"admin"}),
    # the web console: no bearer key; its pages need a session (SESSION_ROLES)
    ("GET", "/console/sign-in"): PUBLIC,
    ("POST", "/console/sign-in"): PUBLIC,
    ("POST", "/console/sign-out"): PUBLIC,
    ("GET", "/console/static/{name}"): PUBLIC,
    ("GET", "/console"): PUBLIC,
    ("POST", "/console/alerts/{alert_id}/feedback"): PUBLIC,
    ("GET", "/console/team"): PUBLIC,
    ("GET", "/console/customers/{customer_id}"): PUBLIC,
    ("GET", "/console/rejects"): PUBLIC,
    ("GET", "/console/thresholds"): PUBLIC,
    ("POST", "/console/thresholds/preview"): PUBLIC,
    ("POST", "/console/thresholds/apply"): PUBLIC,
    ("GET", "/console/thresholds/history"): PUBLIC,
    ("POST", "/console/thresholds/rollback"): PUBLIC,
}

# The console's pages take a session cookie (an API key signed in with once) instead of
# a bearer key: the roles a session's key needs, per page. Every console route of
# ROUTE_ROLES but sign-in, sign-out and the stylesheet is here (a test checks).
SESSION_ROLES: Final[dict[tuple[str, str], frozenset[Role]]] = {
    ("GET", "/console"): READERS,  # a rep's own alerts; a manager's team's; an admin's all
    ("POST", "/console/alerts/{alert_id}/feedback"): frozenset({"rep"}),
    ("GET", "/console/team"): frozenset({"manager", "admin"}),  # scoped as GET /v1/alerts
    ("GET", "/console/customers/{customer_id}"): READERS,  # as GET /v1/customers/{id}
    ("GET", "/console/rejects"): frozenset({"admin"}),  # every source's, as an admin key
    # thresholds, as the /v1/thresholds routes a manager uses (a rollback also needs an
    # admin or unscoped manager key: the service decides, as for the API)
    ("GET", "/console/thresholds"): frozenset({"manager", "admin"}),
    ("POST", "/console/thresholds/preview"): frozenset({"manager", "admin"}),
    ("POST", "/console/thresholds/apply"): frozenset({"manager", "admin"}),
    ("GET", "/console/thresholds/history"): frozenset({"manager", "admin"}),
    ("POST", "/console/thresholds/rollback"): frozenset({"manager", "admin"}),
}
