"""Fixtures of the routing tests."""

from __future__ import annotations

import pytest

from sia.catalog import Catalog

from .builders import customer, make_catalog, rep


@pytest.fixture
def catalog() -> Catalog:
    """Priya (Slack, team UK) owns 12345; Omar (email only) owns 222; Nia (no address) 333."""
    return make_catalog(
        rep("R1", name="Sam Lee", team="UK", email="sam@example.com", timezone="Europe/London"),
        rep("R7", name="Priya Shah", team="UK", manager_id="R1", slack_user_id="U07PRIYA",
            email="priya@example.com", timezone="Europe/London"),
        rep("R8", name="Omar Haddad", team="DE", manager_id="R9", email="omar@example.com",
            timezone="Europe/Berlin"),
        rep("R9", name="Lena Vogt", team="DE", slack_user_id="U09LENA"),
        rep("R5", name="Nia Brown", team="UK", manager_id="R1"),
        rep("R6", name="Tom Ray", team="Nordics"),
        customer("12345", name="Acme", segment="retail", region="North", owner_rep_id="R7"),
        customer("222", segment="enterprise", region="South", owner_rep_id="R8"),
        customer("333", segment="retail", owner_rep_id="R5"),
        customer("444", segment="retail"),
        customer("555", owner_rep_id="R404"),
        customer("666", owner_rep_id="R6"),
    )
