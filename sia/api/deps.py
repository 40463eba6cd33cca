"""Dependencies of the routes: the running service, and who is calling.

`authorize` runs for every request (the app declares it): it finds the route's roles in
`ROUTE_ROLES`, then the caller's key in `Authorization: Bearer KEY`. 401 without a valid
key, 403 when the key's role may not call the route. In `--dev` mode (localhost only)
every request is an admin's, and the console banner says so.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from sia.access.keys import Principal
from sia.api.authorization import PUBLIC, ROUTE_ROLES
from sia.service.runtime import Runtime

DEV = Principal(key_id="dev", name="dev mode", role="admin")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def runtime(request: Request) -> Runtime:
    """The running service."""
    found: Runtime | None = request.app.state.runtime
    if found is None:
        raise HTTPException(503, "no service behind this app")
    return found


async def authorize(request: Request) -> Principal | None:
    """Check the caller against the route's roles; None for public routes."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    method = "GET" if request.method == "HEAD" else request.method
    roles = ROUTE_ROLES.get((method, path)) if path else PUBLIC
    if roles is None:  # a route nobody decided about: refuse, the table test names it
        raise HTTPException(403, f"{method} {path} is not in the authorization table")
    if roles == PUBLIC:
        return None
    service = runtime(request)
    if service.dev:
        request.state.principal = DEV
        return DEV
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise HTTPException(401, "send an API key: Authorization: Bearer KEY (create one "
                                 "with `sia keys create`)", headers=_CHALLENGE)
    principal = await run_in_threadpool(service.keys.authenticate, key.strip())
    if principal is None:
        raise HTTPException(401, "unknown or revoked API key", headers=_CHALLENGE)
    if principal.role not in roles:
        raise HTTPException(403, f"a {principal.role} key may not call {method} {path} "
                                 f"(needs {' or '.join(sorted(roles))})")
    request.state.principal = principal
    return principal


async def caller(principal: Annotated[Principal | None, Depends(authorize)]) -> Principal:
    """The authenticated caller of a non-public route."""
    if principal is None:  # only if a route needing a caller were marked public
        raise HTTPException(401, "this route needs an API key", headers=_CHALLENGE)
    return principal


Caller = Annotated[Principal, Depends(caller)]
Service = Annotated[Runtime, Depends(runtime)]
