"""/v1/keys: API keys, for admins (the same as `sia keys`)."""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter, HTTPException
from starlette.concurrency import run_in_threadpool

from sia.access.keys import KeyProblem
from sia.api.deps import Caller, Service
from sia.api.schemas import KeyIn, KeyOut, NewKey

router = APIRouter(tags=["keys"])


@router.get("/v1/keys", response_model=list[KeyOut])
async def list_keys(service: Service, who: Caller) -> list[KeyOut]:
    """Every key, revoked ones too (never the keys themselves)."""
    infos = await run_in_threadpool(service.keys.list)
    return [KeyOut.model_validate(dataclasses.asdict(i)) for i in infos]


@router.post("/v1/keys", response_model=NewKey, status_code=201)
async def create_key(body: KeyIn, service: Service, who: Caller) -> NewKey:
    """A new key, shown this once."""
    try:
        key, info = await run_in_threadpool(
            lambda: service.keys.create(role=body.role, name=body.name, team=body.team,
                                        rep_id=body.rep_id))
    except KeyProblem as exc:
        raise HTTPException(422, str(exc)) from None
    return NewKey.model_validate({**dataclasses.asdict(info), "key": key})


@router.delete("/v1/keys/{key_id}", response_model=KeyOut)
async def revoke_key(key_id: str, service: Service, who: Caller) -> KeyOut:
    """Revoke a key: it stops working at once."""
    try:
        info = await run_in_threadpool(service.keys.revoke, key_id)
    except KeyProblem as exc:
        raise HTTPException(404, str(exc)) from None
    return KeyOut.model_validate(dataclasses.asdict(info))
