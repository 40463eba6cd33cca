"""GET /v1/customers/{id}: what SIA learned about a customer."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from starlette.concurrency import run_in_threadpool

from sia.api.deps import Caller, Service
from sia.api.schemas import CustomerOut
from sia.service.customers import customer_readable
from sia.service.engine_process import EngineUnavailable

router = APIRouter(tags=["customers"])


@router.get("/v1/customers/{customer_id}", response_model=CustomerOut,
            responses={404: {"description": "SIA has never heard of this customer (or "
                                            "it is not yours)."},
                       503: {"description": "The engine cannot answer now."}})
async def customer(customer_id: str, service: Service, who: Caller) -> CustomerOut:
    """Reference data, the purchase rhythm learned, recent orders and open alerts."""

    try:
        found = await run_in_threadpool(service.customer, customer_id)
    except EngineUnavailable as exc:
        raise HTTPException(503, f"the engine cannot answer now: {exc}") from None
    if found is None or not customer_readable(found, who):
        raise HTTPException(404, f"no customer {customer_id!r}")
    return CustomerOut.model_validate(found)
