"""Feedback: what reps say alerts were worth, verified, stored and learned from."""
