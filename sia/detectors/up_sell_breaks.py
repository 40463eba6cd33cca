"""Quantity price breaks, learned online from the prices customers actually pay.

Many sellers price by quantity: the same product costs less a unit from Q units a line
upward. Nothing in the events says so; the lines do. For each product this keeps a small
table of how many lines were sold at each (quantity, unit price) and reads the breaks off
it: a break is a unit price at least `min_discount` below the usual price that almost
only lines of Q units or more pay:

- at least `break_share` of the lines of Q or more paid that price or less, and
- at most `stray_share` of the lines below Q did (else it is a price change or a
  customer's special price, not a quantity break).

Memory is bounded per product: at most 2 * `max_cells` (quantity, price) cells (past
that, only the `max_cells` largest counts are kept), and counts are halved whenever a
product has been seen `memory_lines` times since the last halving, so old prices fade
out. Breaks are re-read from the table only once as many new lines have arrived as it
holds (a decision stump per price level, see `_break_at`), so the cost per line is a
dictionary update.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter

Cell = tuple[float, int]  # (quantity, unit price in hundredths)


@dataclass(frozen=True, slots=True)
class Break:
    """From `quantity` units a line, a unit price of `price` or less (usual: `usual`)."""

    quantity: float
    price: float
    usual: float  # the usual unit price below the break
    share: float  # share of lines of `quantity` or more that paid `price` or less
    lines: float  # such lines (decayed counts)
    popularity: float  # share of all lines of the product at `quantity` or more

    @property
    def discount(self) -> float:
        """1 - price / usual."""
        return 1.0 - self.price / self.usual if self.usual > 0 else 0.0


class PriceBreaks:
    """Per product: the (quantity, price) table and the breaks read from it."""

    def __init__(self, *, min_discount: float = 0.05, break_share: float = 0.6,
                 stray_share: float = 0.1, min_break_lines: float = 5.0,
                 max_cells: int = 48, max_breaks: int = 3,
                 memory_lines: float = 400.0) -> None:
        self.min_discount = min_discount
        self.break_share = break_share
        self.stray_share = stray_share
        self.min_break_lines = min_break_lines
        self.max_cells = max_cells
        self.max_breaks = max_breaks
        self.memory_lines = memory_lines
        self.cell_cap = 2 * max_cells  # a table this big is pruned to max_cells at once
        self.cells: list[dict[Cell, float]] = []
        self.total: list[float] = []  # lines in the table (after halvings)
        self.fresh: list[float] = []  # lines added since the breaks were last read
        self.due: list[float] = []  # re-read the breaks when `fresh` reaches this
        self.since_halving: list[float] = []
        self.ladders: list[tuple[Break, ...]] = []

    def grow(self, n_products: int) -> None:
        """Make room for product indexes below n_products."""
        while len(self.cells) < n_products:
            self.cells.append({})
            self.total.append(0.0)
            self.fresh.append(0.0)
            self.due.append(2.0 * self.min_break_lines)
            self.since_halving.append(0.0)
            self.ladders.append(())

    def add(self, product: int, quantity: float, unit_price: float) -> tuple[Break, ...]:
        """Count one line; returns the product's breaks (re-read when due)."""
        cells = self.cells[product]
        key = (quantity, int(unit_price * 100.0 + 0.5))
        cells[key] = cells.get(key, 0.0) + 1.0
        fresh = self.fresh[product] + 1.0
        if fresh >= self.due[product] or len(cells) > self.cell_cap:
            self.refresh(product, fresh)
        else:
            self.fresh[product] = fresh
        return self.ladders[product]

    def refresh(self, product: int, fresh: float) -> None:
        """Book the fresh lines, forget old ones when due, and re-read the breaks."""
        cells = self.cells[product]
        self.fresh[product] = 0.0
        self.since_halving[product] += fresh
        if len(cells) > self.max_cells:
            # stable sort: ties keep insertion order, so results stay deterministic
            keep = sorted(cells.items(), key=itemgetter(1), reverse=True)[: self.max_cells]
            cells.clear()
            cells.update(keep)
        if self.since_halving[product] >= self.memory_lines:
            for key in list(cells):
                value = cells[key] * 0.5
                if value < 0.5:
                    del cells[key]
                else:
                    cells[key] = value
            self.since_halving[product] = 0.0
        total = self.total[product] = sum(cells.values())
        self.due[product] = max(2.0 * self.min_break_lines, total)
        self.ladders[product] = self.read(cells)

    def read(self, cells: dict[Cell, float]) -> tuple[Break, ...]:
        """The breaks a (quantity, price) table shows, by quantity, each cheaper than the last."""
        total = sum(cells.values())
        if total < 2 * self.min_break_lines:
            return ()
        by_quantity: dict[float, float] = {}
        levels: dict[int, float] = {}
        for (quantity, cents), n in cells.items():
            by_quantity[quantity] = by_quantity.get(quantity, 0.0) + n
            levels[cents] = levels.get(cents, 0.0) + n
        quantities = sorted(by_quantity)
        candidates = sorted(levels.items(), key=lambda kv: (-kv[1], kv[0]))[:6]
        found: dict[float, Break] = {}
        for cents, n in candidates:
            if n < self.min_break_lines:
                continue
            found_break = self._break_at(cells, quantities, by_quantity, total, cents)
            if found_break is None:
                continue
            current = found.get(found_break.quantity)
            if current is None or found_break.price > current.price:
                found[found_break.quantity] = found_break  # the more cautious claim
        ladder: list[Break] = []
        for quantity in sorted(found):
            candidate = found[quantity]
            if ladder and candidate.price >= ladder[-1].price:
                continue  # a later break must be cheaper still
            ladder.append(candidate)
        return tuple(ladder[: self.max_breaks])

    def _break_at(self, cells: dict[Cell, float], quantities: list[float],
                  by_quantity: dict[float, float], total: float, cents: int) -> Break | None:
        """Where lines start paying `cents` or less, if that is a quantity break.

        The quantity is the threshold that best separates cheap lines (paying `cents`
        or less) from the others: the fewest cheap lines below it plus dear lines from
        it upward (a decision stump; the smallest such quantity on ties).
        """
        cheap: dict[float, float] = {}  # lines paying `cents` or less, by quantity
        for (quantity, c), n in cells.items():
            if c <= cents:
                cheap[quantity] = cheap.get(quantity, 0.0) + n
        all_cheap = sum(cheap.values())
        below_all = below_cheap = 0.0
        best: tuple[float, float, float, float] | None = None  # errors, Q, below_all, below_cheap
        for quantity in quantities:
            if quantity in cheap:
                errors = below_cheap + (total - below_all) - (all_cheap - below_cheap)
                if best is None or errors < best[0]:
                    best = (errors, quantity, below_all, below_cheap)
            below_all += by_quantity[quantity]
            below_cheap += cheap.get(quantity, 0.0)
        if best is None:
            return None
        _, quantity, below_all, below_cheap = best
        above_all, above_cheap = total - below_all, all_cheap - below_cheap
        if (below_all < self.min_break_lines or above_cheap < self.min_break_lines
                or above_cheap < self.break_share * above_all
                or below_cheap > self.stray_share * below_all):
            return None
        usual = self._usual(cells, quantity)
        price = cents / 100.0
        if usual <= 0 or price > usual * (1.0 - self.min_discount):
            return None
        return Break(quantity, price, usual, above_cheap / above_all, above_cheap,
                     above_all / total)

    @staticmethod
    def _usual(cells: dict[Cell, float], below: float) -> float:
        """The most common unit price of lines below `below` units (ties: the lower)."""
        counts: dict[int, float] = {}
        for (quantity, cents), n in cells.items():
            if quantity < below:
                counts[cents] = counts.get(cents, 0.0) + n
        if not counts:
            return 0.0
        cents = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        return cents / 100.0


def next_break(ladder: tuple[Break, ...], quantity: float) -> Break | None:
    """The first break above `quantity` units, if any."""
    for candidate in ladder:
        if candidate.quantity > quantity:
            return candidate
    return None
