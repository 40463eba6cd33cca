"""Operations: /healthz (the process answers), /readyz (it can take events now),
/metrics (Prometheus), /v1/status (what the engine and delivery are doing)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from sia.api.deps import Caller, Service
from sia.api.schemas import Readiness
from sia.service.engine_process import EngineUnavailable
from sia.service.runtime import Runtime

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up and answering."""
    return {"status": "ok"}


def readiness(service: Runtime) -> tuple[bool, dict[str, str]]:
    """Each check's finding; ready when all pass."""
    checks: dict[str, str] = {}
    ok = True
    writable = service.journal.writable()
    checks["journal"] = "writable" if writable else "cannot open a write transaction"
    ok &= writable
    lag, bound = service.backlog(), service.settings.serve_max_backlog
    checks["engine_lag"] = f"{lag} events (bound {bound})"
    ok &= lag <= bound
    engine = service.engine
    if engine is not None:
        problem = engine.problem()
        checks["engine"] = problem or "running"
        ok &= problem is None
    return ok, checks


@router.get("/readyz", response_model=Readiness,
            responses={503: {"model": Readiness, "description": "Not ready, with why."}})
async def readyz(service: Service) -> JSONResponse:
    """Ready when the journal is writable, the engine runs and its lag is under bound."""
    ok, checks = await run_in_threadpool(readiness, service)
    return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}}})
async def metrics(request: Request) -> Response:
    """Prometheus text format."""
    registry = request.app.state.metrics.registry
    data = await run_in_threadpool(generate_latest, registry)
    return Response(data, media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/status")
async def status(service: Service, who: Caller) -> dict[str, Any]:
    """What the service is doing: mode, engine clock and lag, counts, delivery."""

    def gather() -> dict[str, Any]:
        out: dict[str, Any] = {"mode": service.mode, "caller": who.describe(),
                               "journal_events": service.journal.count(),
                               "lag": service.backlog(),
                               "preview_warm_up": service.previews.warmed or None}
        if service.engine is not None:
            try:
                out["engine"] = service.engine.status()
            except EngineUnavailable as exc:
                out["engine"] = {"error": str(exc)}
            if who.role not in ("admin", "manager"):  # whose alerts are muted: theirs
                (out["engine"].get("delivery") or {}).pop("muted", None)
        return out

    return await run_in_threadpool(gather)
