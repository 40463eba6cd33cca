"""Who may call what: the table covers every route, keys are checked on a real server."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from sia.api.app import create_app
from sia.api.authorization import PUBLIC, ROUTE_ROLES

from .conftest import Server, create_key, serving


def served_routes() -> set[tuple[str, str]]:
    """(method, path) of every route the app serves: those its OpenAPI description
    lists, and FastAPI's own pages (the description, the docs)."""
    app = create_app(None)
    out = {(method.upper(), path) for path, item in app.openapi()["paths"].items()
           for method in item}
    routes: list[Any] = list(app.routes)
    while routes:
        route = routes.pop()
        # routers are included as branches (FastAPI 0.16x): their own routes, those left
        # out of the description too (the console's pages)
        routes.extend(getattr(getattr(route, "original_router", None), "routes", ()))
        for method in getattr(route, "methods", None) or ():
            if method != "HEAD":
                out.add((method, route.path))
    return out


def test_every_route_is_in_the_authorization_table() -> None:
    missing = served_routes() - set(ROUTE_ROLES)
    assert not missing, f"routes nobody decided who may call: {sorted(missing)}"


def test_the_table_names_no_route_that_does_not_exist() -> None:
    assert set(ROUTE_ROLES) - served_routes() == set()


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


@pytest.mark.parametrize(("method", "path"), sorted(k for k, v in ROUTE_ROLES.items()
                                                    if v != PUBLIC))
def test_every_protected_route_refuses_a_request_without_a_key(
        server: Server, method: str, path: str) -> None:
    with server.client() as client:
        response = client.request(method, concrete(path))
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in response.json()["detail"]


@pytest.mark.parametrize(("method", "path"), sorted(k for k, v in ROUTE_ROLES.items()
                                                    if v != PUBLIC))
def test_every_role_the_table_refuses_gets_403(server: Server, method: str, path: str) -> None:
    roles = ROUTE_ROLES[(method, path)]
    for who, role in (("crm", "crm"), ("rep", "rep"), ("manager", "manager"),
                      ("admin", "admin")):
        with server.client(who) as client:
            response = client.request(method, concrete(path))
        if role in roles:
            assert response.status_code not in (401, 403), (who, response.text)
        else:
            assert response.status_code == 403, (who, response.text)
            assert f"a {role} key may not call {method} {path}" in response.json()["detail"]


def test_an_unknown_or_malformed_key_is_401(server: Server) -> None:
    for key in ("sia_00000000_nope", "nonsense", server.keys["admin"] + "x"):
        with server.client() as client:
            response = client.get("/v1/alerts", headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 401
        assert response.json()["detail"] == "unknown or revoked API key"


def test_keys_made_and_revoked_by_the_cli_work_at_once_on_a_running_server(
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    with serving(data) as s:
        key = create_key(data, "manager", "--team", "UK")
        headers = {"Authorization": f"Bearer {key}"}
        with s.client() as client:
            assert client.get("/v1/alerts", headers=headers).status_code == 200
            listed = client.get("/v1/keys", headers={
                "Authorization": f"Bearer {s.keys['admin']}"}).json()
            key_id = next(k["key_id"] for k in listed if k["team"] == "UK"
                          and k["name"] == "test manager")
            assert "key_hash" not in listed[0] and all("key" not in k for k in listed)
            import subprocess
            import sys
            subprocess.run([sys.executable, "-c", "from sia.cli import app; app()", "keys",
                            "revoke", key_id, "--data-dir", str(data)], check=True,
                           capture_output=True)
            response = client.get("/v1/alerts", headers=headers)
        assert response.status_code == 401


def test_keys_are_stored_hashed(server: Server) -> None:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from sia.access.keys import ApiKeyRecord

    with Session(server.runtime.store.engine) as session:
        hashes = list(session.scalars(select(ApiKeyRecord.key_hash)))
    for key in server.keys.values():
        assert all(key not in h and key.split("_")[-1] not in h for h in hashes)


def test_admins_manage_keys_through_the_api(server: Server) -> None:
    with server.client("admin") as admin:
        made = admin.post("/v1/keys", json={"role": "rep", "name": "Ana", "rep_id": "R9"})
        assert made.status_code == 201, made.text
        key, key_id = made.json()["key"], made.json()["key_id"]
        with server.client() as anyone:
            auth = {"Authorization": f"Bearer {key}"}
            assert anyone.get("/v1/alerts", headers=auth).status_code == 200
            assert admin.delete(f"/v1/keys/{key_id}").json()["revoked_at"] is not None
            assert anyone.get("/v1/alerts", headers=auth).status_code == 401
        wrong = admin.post("/v1/keys", json={"role": "rep", "name": "no rep id"})
        assert wrong.status_code == 422 and "--rep" in wrong.json()["detail"]
        assert admin.delete("/v1/keys/nosuchid").status_code == 404


def test_dev_mode_needs_no_key(tmp_path: Path) -> None:
    with serving(tmp_path / "data", dev=True) as s, s.client() as client:
        assert client.get("/v1/alerts").status_code == 200
        assert client.get("/v1/status").json()["caller"] == 'admin key "dev mode"'
