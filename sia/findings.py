"""What a detector reports: a finding, before policy turns it into an alert."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

SubjectKind = Literal["customer", "rep", "team", "product"]


class Severity(StrEnum):
    """How urgent a finding is; ordered."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        """0 for low, 2 for high."""
        return SEVERITY_RANK[self.value]


# the one ranking of severities (routing and delivery compare by it); unknown ranks as low
SEVERITY_RANK: dict[str, int] = {"low": 0, "medium": 1, "high": 2}


@dataclass(frozen=True, slots=True)
class Finding:
    """One situation a detector noticed, explained with the real numbers."""

    detector: str
    kind: str  # the detector's sub-signal, e.g. "overdue" or "value_erosion"
    subject_kind: SubjectKind
    subject_id: str
    occurred_at: datetime  # event time (or clock time) at which it was seen
    score: float  # in [0, 1]
    severity: Severity
    title: str
    explanation: str
    action: str
    dedup_key: str  # identical whenever the same situation is seen again
    evidence: tuple[str, ...] = ()  # event ids
    value: float = 0.0  # money at stake (revenue at risk, expected uplift), for ranking
    facts: dict[str, Any] = field(default_factory=dict)  # the numbers behind the text

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"score {self.score} outside [0, 1] in {self.dedup_key}")
        if self.occurred_at.tzinfo is None:
            raise ValueError(f"occurred_at must carry a zone in {self.dedup_key}")
        for name in ("detector", "kind", "subject_id", "title", "explanation", "action",
                     "dedup_key"):
            if not getattr(self, name):
                raise ValueError(f"finding field {name} is empty")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        data = asdict(self)
        data["occurred_at"] = self.occurred_at.isoformat()
        data["severity"] = self.severity.value
        data["evidence"] = list(self.evidence)
        return data
