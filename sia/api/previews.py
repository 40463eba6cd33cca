"""Threshold previews as the API and the console ask for them: the changes validated
for the asking key, then run in the service's preview worker process."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.concurrency import run_in_threadpool

from sia.access.keys import Principal
from sia.service.preview import PreviewRequest
from sia.service.runtime import Runtime
from sia.service.thresholds import Change


async def preview_of(service: Runtime, changes: list[Change], who: Principal, days: float,
                     horizon_days: float, *, fresh: bool = False) -> dict[str, Any]:
    """The preview of these changes against the current version (validated first: raises
    Forbidden or ConfigError), run in a preview worker process; `error` when there is
    nothing to preview on. The API's preview and the console's both call this."""
    validated = await run_in_threadpool(service.thresholds.propose, changes, who)
    current = await run_in_threadpool(service.thresholds.current)
    request = PreviewRequest(service.journal_url, current.config.as_dict(),
                             validated.config.as_dict(), days, horizon_days,
                             **({"session_s": 0.0} if fresh else {}),
                             rep=who.rep_id if who.role == "rep" else None)
    result: dict[str, Any] = await asyncio.wrap_future(service.previews.submit(request))
    result["version"] = current.version
    return result
