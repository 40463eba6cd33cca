"""Request and response bodies of the API, as they appear in its OpenAPI description."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecordResult(BaseModel):
    """The answer for one record: accepted, duplicate, or rejected with the reason."""

    index: int = Field(description="Position of the record in the request, from 0.")
    event_id: str | None = Field(description="The record's event_id, when it has one.")
    status: Literal["accepted", "duplicate", "rejected"]
    reason: str | None = Field(description="Why the record was rejected (field: message).")


class IngestResponse(BaseModel):
    """Every record of the request, in order, and the counts."""

    results: list[RecordResult]
    accepted: int
    duplicates: int
    rejected: int


class Problem(BaseModel):
    """An error: what went wrong, in words."""

    detail: Any


class RejectOut(BaseModel):
    """A kept reject."""

    id: int
    received_at: datetime
    source: str = Field(description="Who sent it: the API key's name, or engine.")
    position: int = Field(description="Index of the record in its request.")
    event_id: str | None
    reason: str
    raw: str = Field(description="The record as it was received.")


class RejectPage(BaseModel):
    """A page of rejects, newest first."""

    items: list[RejectOut]
    next_cursor: str | None


class AlertOut(BaseModel):
    """A stored alert: what, about whom, why, and what to do."""

    model_config = ConfigDict(extra="allow")

    alert_id: str
    detector: str
    kind: str
    subject_kind: str
    subject_id: str
    occurred_at: str
    score: float
    severity: str
    title: str
    explanation: str
    action: str
    dedup_key: str
    value: float = Field(description="Money at stake (revenue at risk, expected uplift).")
    evidence: list[str]
    facts: dict[str, Any]
    status: str
    rep_id: str | None
    team: str | None


class AlertPage(BaseModel):
    """A page of alerts, newest first."""

    items: list[AlertOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null "
                                                "on the last.")


class AlertDetail(AlertOut):
    """An alert with its deliveries and the feedback it got."""

    deliveries: list[dict[str, Any]]
    feedback: list[dict[str, Any]]


class FeedbackIn(_Body):
    """A rep's verdict on an alert."""

    verdict: Literal["useful", "not_useful", "done", "snooze_7d"]


class FeedbackOut(BaseModel):
    """What became of the verdict."""

    alert_id: str
    verdict: str
    outcome: Literal["recorded", "unchanged", "changed"]
    previous: str | None


class CustomerOut(BaseModel):
    """What SIA learned about a customer."""

    model_config = ConfigDict(extra="allow")

    customer_id: str
    name: str | None
    segment: str | None
    region: str | None
    owner_rep_id: str | None
    team: str | None
    rhythm: dict[str, Any] | None
    recent_orders: list[dict[str, Any]]
    open_alerts: list[dict[str, Any]]
    learned_by: list[str]


class KeyIn(_Body):
    """A key to create."""

    role: Literal["crm", "rep", "manager", "admin"]
    name: str = Field(min_length=1, max_length=200)
    team: str | None = Field(default=None, max_length=200,
                             description="Manager keys: the team they see (none: every team).")
    rep_id: str | None = Field(default=None, max_length=200,
                               description="Rep keys: the rep whose alerts they read.")


class KeyOut(BaseModel):
    """A key as stored (never the key itself)."""

    key_id: str
    name: str
    role: str
    team: str | None
    rep_id: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class NewKey(KeyOut):
    """A new key: `key` is shown this once."""

    key: str


class Readiness(BaseModel):
    """Whether the service can take events now, and what is wrong when not."""

    ready: bool
    checks: dict[str, str]
