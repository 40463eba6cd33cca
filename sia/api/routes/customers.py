"""GET /v1/customers/{id}: what SIA learned about a customer."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

from fastapi import APIRouter, HTTPException
from starlette.concurrency import run_in_threadpool

from sia.api.deps import Caller, Service
from sia.api.schemas import CustomerOut
from sia.service.customers import customer_view

router = APIRouter(tags=["customers"])


@router.get("/v1/customers/{customer_id}", response_model=CustomerOut,
            responses={404: {"description": "SIA has never heard of this customer (or "
                                            "it is not yours)."}})
async def customer(customer_id: str, service: Service, who: Caller) -> CustomerOut:
    """Reference data, the purchase rhythm learned, recent orders and open alerts."""

    def view() -> dict[str, Any] | None:
        live = service.live
        with live.lock if live is not None else nullcontext():
            return customer_view(customer_id, engine=live.engine if live else None,
                                 journal=service.journal, store=service.store)

    found = await run_in_threadpool(view)
    if found is None or (who.role == "rep" and found["owner_rep_id"] != who.rep_id) or (
            who.role == "manager" and who.team is not None and found["team"] != who.team):
        raise HTTPException(404, f"no customer {customer_id!r}")
    return CustomerOut.model_validate(found)
