"""The SIA HTTP app: one router per resource, one authorization table, and a lifespan
that starts the live engine and delivery with the server and stops them after the
last request (then saves the state).

`create_app(runtime)` takes a service already opened (`sia.service.runtime`): the app
knows nothing of Kafka, files or the terminal.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.concurrency import run_in_threadpool

import sia
from sia.api.authorization import PUBLIC, ROUTE_ROLES
from sia.api.deps import authorize
from sia.api.metrics import Metrics, RequestTimer
from sia.api.routes import (
    alerts,
    console,
    console_team,
    console_thresholds,
    customers,
    events,
    feedback,
    keys,
    ops,
    thresholds,
)
from sia.events.models import EVENT_ADAPTER
from sia.service.runtime import Runtime
from sia.settings import Settings

log = logging.getLogger("sia.api")
DESCRIPTION = """SIA learns each customer's and each rep's normal behaviour from the events
a CRM posts, and tells salespeople when something is worth acting on.

Every call but the probes and the signed feedback endpoints needs an API key:
`Authorization: Bearer KEY` (`sia keys create --role crm --name my-crm`). Roles: `crm`
posts events; `rep` reads its own alerts and gives feedback; `manager` reads a team's
alerts; `admin` may do everything, and manages keys."""


def server_config(app: FastAPI, settings: Settings, *, host: str, port: int,
                  log_config: dict[str, Any] | None = None) -> Any:
    """The uvicorn configuration every SIA server runs with: connection cap, keep-alive
    timeout, graceful shutdown (requests in flight finish, for up to 30 s)."""
    import uvicorn

    return uvicorn.Config(app, host=host, port=port, log_config=log_config,
                          log_level=None if log_config else "warning", access_log=True,
                          limit_concurrency=settings.serve_max_connections,
                          timeout_keep_alive=settings.serve_keep_alive_seconds,
                          timeout_graceful_shutdown=30, lifespan="on")


def create_app(runtime: Runtime | None) -> FastAPI:
    """The app around a running service (None: only to describe the API)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if runtime is None:
            yield
            return
        if runtime.dev:
            log.warning("DEV MODE: no API key is checked; every request acts as an admin. "
                        "Never expose this server beyond localhost.")
        runtime.start()
        # what was loaded to start (about 200,000 objects: FastAPI, pydantic, SQLAlchemy,
        # the detectors' modules) is never garbage: out of the collector's way, a full
        # collection no longer stalls every request in flight for 90 ms or more
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await run_in_threadpool(runtime.stop)

    app = FastAPI(title="SIA", version=sia.__version__, description=DESCRIPTION,
                  lifespan=lifespan, dependencies=[Depends(authorize)])
    app.state.runtime = runtime
    app.state.metrics = Metrics(runtime) if runtime is not None else None
    app.add_middleware(RequestTimer)
    for module in (ops, events, alerts, customers, feedback, thresholds, keys):
        app.include_router(module.router)
    console.install(app, runtime)  # the web console's pages, outside the API description
    app.include_router(console_team.router)  # its team view, customer and rejects pages
    app.include_router(console_thresholds.router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The generated description, with the event contract in its components (the events
    route reads its body itself, one record at a time)."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version,
                             description=app.description, routes=app.routes)
        event = EVENT_ADAPTER.json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(event.pop("$defs", {}))
        components["Event"] = event
        schema["components"]["securitySchemes"] = {
            "apiKey": {"type": "http", "scheme": "bearer",
                       "description": "An API key from `sia keys create`."}}
        schema["security"] = [{"apiKey": []}]
        _document_errors(schema)
        app.openapi_schema = schema
    return app.openapi_schema


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {
        "$ref": "#/components/schemas/Problem"}}}}


def _document_errors(schema: dict[str, Any]) -> None:
    """The answers every route can give besides its own: 401 and 403 where a key is
    needed (from the authorization table), 400 for a body that does not parse, and 422
    either as FastAPI's field list or as one message."""
    components = schema["components"]["schemas"]
    components["Problem"] = {"type": "object", "required": ["detail"],
                             "properties": {"detail": {}}, "title": "Problem"}
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            responses = operation.setdefault("responses", {})
            if ROUTE_ROLES.get((method.upper(), path)) != PUBLIC:
                responses.setdefault("401", _problem("No API key, or an unknown or "
                                                     "revoked one."))
                responses.setdefault("403", _problem("The key's role may not call this."))
            else:
                operation["security"] = []
            if "requestBody" in operation:
                responses.setdefault("400", _problem("A body that does not parse."))
            invalid = responses.get("422")
            if invalid is not None:
                content = invalid.setdefault("content", {}).setdefault("application/json", {})
                documented = content.get("schema")
                content["schema"] = {"anyOf": [documented, {"$ref": "#/components/schemas/"
                                                                    "Problem"}]} \
                    if documented else {"$ref": "#/components/schemas/Problem"}
