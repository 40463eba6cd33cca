"""POST /v1/events: the CRM's front door; GET /v1/rejects: what was refused, and why.

A request holds one event, `{"events": [...]}` (or a bare JSON array), or NDJSON (one
event a line), up to 1,000 events and 5 MB. The answer (200 whenever the request itself
could be read) lists every record in order: accepted, duplicate, or rejected with the
reason. Accepted events are committed to the journal before the answer.
- 413: more than 5 MB or 1,000 events; 415: another content type; 422: a JSON body that
  does not decode; 429 with Retry-After: the engine's backlog is over its bound.
"""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool

from sia.access.keys import Principal
from sia.api.deps import Caller, Service
from sia.api.metrics import count_results
from sia.api.schemas import IngestResponse, Problem, RejectOut, RejectPage
from sia.service.engine_process import EngineUnavailable
from sia.service.ingest import ReceiverUnavailable, RecordResult, ingest, unreadable
from sia.service.rejects import reject_page

router = APIRouter(tags=["events"])
MAX_BODY = 5 * 1024 * 1024
MAX_EVENTS = 1000
JSON_TYPES = ("application/json",)
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl",
                "application/x-jsonlines")

REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "description": "One event, {\"events\": [...]} or NDJSON; at most 1,000 events, 5 MB.",
    "content": {
        "application/json": {"schema": {"oneOf": [
            {"$ref": "#/components/schemas/Event"},
            {"type": "object", "required": ["events"], "additionalProperties": False,
             "properties": {"events": {"type": "array", "maxItems": MAX_EVENTS,
                                       "items": {"$ref": "#/components/schemas/Event"}}}},
        ]}},
        "application/x-ndjson": {"schema": {"type": "string",
                                            "description": "One JSON event per line."}},
    },
}


async def read_limited(request: Request, limit: int = MAX_BODY) -> bytes:
    """The body, refused with 413 as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"request body over {limit // (1024 * 1024)} MB: send fewer "
                                 "events per request")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"request body over {limit // (1024 * 1024)} MB: send "
                                     "fewer events per request")
        chunks.append(chunk)
    return b"".join(chunks)


def records_of(body: bytes, content_type: str) -> list[Any]:
    """The records of a request body, each a decoded JSON value or an unreadable line."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media in NDJSON_TYPES:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise HTTPException(422, f"body is not UTF-8: {exc}") from None
        items: list[Any] = []
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                items.append(json.loads(line))
            except (ValueError, RecursionError) as exc:
                items.append(unreadable(line, "nested too deeply"
                                        if isinstance(exc, RecursionError) else str(exc)))
        return items
    if media not in JSON_TYPES:
        raise HTTPException(415, "send application/json (one event or {\"events\": [...]}) "
                                 "or application/x-ndjson (one event a line)")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise HTTPException(422, f"body is not valid JSON: {exc}") from None
    if isinstance(data, list):
        return data
    if isinstance(data, dict) and set(data) == {"events"}:
        if not isinstance(data["events"], list):
            raise HTTPException(422, "events must be a list of events")
        return list(data["events"])
    return [data]


@router.post("/v1/events", response_model=IngestResponse, openapi_extra={
    "requestBody": REQUEST_BODY}, responses={
        413: {"model": Problem, "description": "Over 5 MB or 1,000 events."},
        415: {"model": Problem, "description": "Not JSON or NDJSON."},
        422: {"model": Problem, "description": "A JSON body that does not decode."},
        429: {"model": Problem, "description": "Backlog over its bound: retry after "
                                               "Retry-After seconds."},
        503: {"model": Problem, "description": "Events could not be handed on (Kafka "
                                               "down): nothing recorded, retry."}})
async def post_events(request: Request, service: Service, who: Caller) -> IngestResponse:
    """Validate every record and accept the valid ones (durably, before answering)."""
    body = await read_limited(request)
    items = records_of(body, request.headers.get("content-type", ""))
    if len(items) > MAX_EVENTS:
        raise HTTPException(413, f"{len(items):,} events in one request: send at most "
                                 f"{MAX_EVENTS:,}")
    bound = service.settings.serve_max_backlog

    def receive() -> list[RecordResult] | int:  # one trip to a worker thread
        backlog = service.backlog()
        if backlog > bound:
            return backlog
        return ingest(items, receiver=service.receiver, source=source_of(who),
                      limits=service.limits)

    try:
        results = await run_in_threadpool(receive)
    except ReceiverUnavailable as exc:
        raise HTTPException(503, str(exc), headers={"Retry-After": "5"}) from None
    if isinstance(results, int):
        raise HTTPException(429, f"{results:,} events wait to be learned (bound {bound:,}); "
                                 "retry later", headers={"Retry-After": str(_retry_after(
                                     service, results - bound // 2))})
    count_results(request.app, results)
    return _response(results)


def source_of(who: Principal) -> str:
    """How rejects name who sent them: the key's name and id."""
    return f"{who.name}#{who.key_id}"


def _response(results: list[RecordResult]) -> IngestResponse:
    counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
    for r in results:
        counts[r.status] += 1
    return IngestResponse.model_validate({
        "results": [r.as_dict() for r in results], "accepted": counts["accepted"],
        "duplicates": counts["duplicate"], "rejected": counts["rejected"]})


def _retry_after(service: Service, excess: int) -> int:
    """Seconds the engine needs to learn `excess` events at its rate so far."""
    rate = 1000.0
    if service.engine is not None:
        try:
            status = service.engine.status()
            if status["busy_seconds"]:
                rate = status["events"] / status["busy_seconds"]
        except EngineUnavailable:
            pass
    return max(1, min(60, math.ceil(excess / max(rate, 1.0))))


@router.get("/v1/rejects", response_model=RejectPage)
async def list_rejects(service: Service, who: Caller,
                       cursor: str | None = Query(default=None, pattern=r"^[0-9]{1,18}$"),
                       limit: int = Query(default=100, ge=1, le=1000)) -> RejectPage:
    """Rejected records, newest first: a crm key sees what it sent, an admin key all."""
    source = source_of(who) if who.role == "crm" else None
    page = await run_in_threadpool(lambda: reject_page(service.journal, cursor=cursor,
                                                       limit=limit, source=source))
    return RejectPage(items=[RejectOut(id=r.id, received_at=r.received_at, source=r.source,
                                       position=r.position, event_id=r.event_id,
                                       reason=r.reason, raw=r.raw) for r in page.items],
                      next_cursor=page.next_cursor)
