"""Opportunities for the performance detector: three reps of one team win deals all year;
one goes quiet for ten weeks in the spring, another for eight in the autumn.

About 300 events: each rep wins a deal every 4 to 6 days and loses one every month or
so (no product, so product-based detectors ignore them). Ids start with "performance-".
"""

from __future__ import annotations

import random

from sia.events.models import Event, Opportunity, Rep

from ..streams import DAYS, at_day

TEAM = "performance-Central"
MANAGER = "performance-M1"
REPS = ("performance-R1", "performance-R2", "performance-R3")
# (rep, first quiet day, last quiet day): no wins, no losses in between
QUIET = {"performance-R2": (150.0, 220.0), "performance-R3": (280.0, 336.0)}


def events(rng: random.Random) -> list[Event]:
    """Reference data for the team, then the reps' won and lost deals."""
    out: list[Event] = [Rep(event_id="performance-rep-M1", occurred_at=at_day(-3), rep_id=MANAGER,
                            name="Maria Manager", team=TEAM)]
    for i, rep in enumerate(REPS):
        out.append(Rep(event_id=f"performance-rep-{i + 1}", occurred_at=at_day(-3), rep_id=rep,
                       name=f"Perf Rep {i + 1}", team=TEAM, manager_id=MANAGER))
    n = 0
    for i, rep in enumerate(REPS):
        quiet_from, quiet_to = QUIET.get(rep, (DAYS + 1.0, DAYS + 1.0))
        day = rng.uniform(0.0, 5.0)
        while day < DAYS:
            if not quiet_from <= day <= quiet_to:
                n += 1
                stage = "lost" if rng.random() < 0.15 else "won"
                out.append(Opportunity(
                    event_id=f"performance-opp-{n:04d}-{stage}", occurred_at=at_day(day),
                    opportunity_id=f"performance-{n:04d}", customer_id=f"performance-A{i + 1}",
                    rep_id=rep, stage=stage,
                    amount=round(rng.uniform(800.0, 1200.0)) if stage == "won" else None))
            day += rng.uniform(4.0, 6.0)
    return out
