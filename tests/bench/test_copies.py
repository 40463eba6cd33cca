"""`sia bench --preview --copies N`: a customer base N times as large, made from a real
one, each copy with customers and orders of its own and the same products and reps."""

from __future__ import annotations

import pytest

from sia.bench.copies import copied
from sia.cli.demo import DATASETS, load


def test_every_copy_has_its_own_customers_and_orders_and_the_same_catalogue() -> None:
    events = load(DATASETS[0])[0]
    out = list(copied(events, 3))
    assert len(out) == 3 * len(events)
    assert len({e.event_id for e in out}) == len(out)
    assert [e.occurred_at for e in out] == sorted(e.occurred_at for e in out)
    customers = [{getattr(e, "customer_id", None) for e in out[k::3]} - {None}
                 for k in range(3)]
    assert customers[0] and not customers[0] & customers[1]
    assert {c.rsplit("-", 1)[0] for c in customers[2]} == \
        {getattr(e, "customer_id", None) for e in events} - {None}
    lines = [tuple(line.product_id for line in e.lines) for e in out if e.type == "order"]
    assert lines[0::3] == lines[1::3] == lines[2::3]
    reps = {getattr(e, "rep_id", None) for e in out} - {None}
    assert reps == {getattr(e, "rep_id", None) for e in events} - {None}
    assert list(copied(events, 1)) == list(events)
    with pytest.raises(ValueError):
        list(copied(events, 0))
