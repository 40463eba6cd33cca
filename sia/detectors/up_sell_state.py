"""A customer's up-sell state: two counts and a few product slots, packed for snapshots.

- how often the customer buys at a quantity price when one exists (two counts);
- for the products they buy near or above a price break (the slots; at most
  `max_products`, most customers fill four or fewer), the lines bought, the order
  number of the last one, the largest quantity ever bought, and the typical quantity a
  line now and earlier (two exponentially weighted means). A product not tracked yet
  takes the slot with the least claim (lines, discounted by the orders since the last
  one) if that claim is below one line; products bought again and again keep theirs;
- for products of a tiered catalogue (a `tier` or an `upgrade_to` in the reference
  data), how many orders held each and the day of the first.

A snapshot packs each slot into 22 bytes (median customer: under 200 bytes in all).
"""

from __future__ import annotations

import struct

from sia.detectors.packing import restore_values, sparse_values

SLOT = 5  # numbers per slot: lines, order number of the last line, largest, fast EW, slow EW
FAST, SLOW = 0.5, 0.15  # weights of the newest line in the "now" and "earlier" quantities
# a slot packed for snapshots: product, lines, last order, then the three quantities in
# hundredths (kept rounded to hundredths in memory too, so a restored state is identical)
_PACKED = struct.Struct("<IHIIII")
_MAX_QUANTITY = 40_000_000.0


class UpSellCustomer:
    """Counts, tracked products and their slots as flat lists of numbers."""

    __slots__ = ("bulk_hits", "bulk_lines", "fired_at", "first_day", "orders", "slots",
                 "tiers", "tracked")

    def __init__(self) -> None:
        self.orders = 0
        self.first_day = 0  # whole day of the first order
        self.fired_at = -1e9  # day of the last finding
        self.bulk_lines = 0  # lines of products with a known price break
        self.bulk_hits = 0  # ... bought at the first break quantity or more
        self.tracked: list[int] = []  # product index of each slot
        self.slots: list[float] = []  # SLOT numbers per tracked product
        self.tiers: list[int] = []  # (product, orders, first day) per tiered product

    def halve_bulk(self) -> None:
        """Halve the quantity-price counts, so they follow the customer's recent habits."""
        self.bulk_lines //= 2
        self.bulk_hits //= 2

    def bulk_share(self) -> float:
        """Share of lines bought at a quantity price, shrunk toward 1 in 10 for few lines."""
        return (self.bulk_hits + 0.5) / (self.bulk_lines + 5.0)

    def slot_of(self, product: int) -> int:
        """Offset of the product's slot in `slots`, or -1."""
        tracked = self.tracked
        return tracked.index(product) * SLOT if product in tracked else -1

    def update(self, offset: int, quantity: float) -> None:
        """Count a line of the product in the slot at `offset`."""
        slots = self.slots
        lines = slots[offset]
        if lines < 65535:
            lines += 1
            slots[offset] = lines
        slots[offset + 1] = self.orders
        if quantity > slots[offset + 2]:
            slots[offset + 2] = _hundredths(quantity)
        fast, slow = slots[offset + 3], slots[offset + 4]
        slots[offset + 3] = _hundredths(fast + FAST * (quantity - fast))
        slots[offset + 4] = _hundredths(slow + max(SLOW, 1.0 / lines) * (quantity - slow))

    def admit(self, product: int, quantity: float, max_slots: int) -> int:
        """A slot for a product not tracked yet; -1 when every slot has a better claim.

        A slot's claim is its lines, discounted by the orders since its last line; only a
        claim below one line is given up, so products bought again and again keep their
        slots and one-off purchases come and go.
        """
        slots, tracked = self.slots, self.tracked
        q = _hundredths(quantity)
        entry = (1, self.orders, q, q, q)
        if len(tracked) < max_slots:
            tracked.append(product)
            slots.extend(entry)
            return len(slots) - SLOT
        orders = self.orders
        offset, weakest = -1, 1.0
        for at in range(0, len(slots), SLOT):
            claim = slots[at] / (1.0 + 0.25 * (orders - slots[at + 1]))
            if claim < weakest:
                offset, weakest = at, claim
        if offset >= 0:
            tracked[offset // SLOT] = product
            slots[offset: offset + SLOT] = entry
        return offset

    def tier_count(self, product: int, day: int, max_tiers: int) -> tuple[int, int, bool]:
        """Count an order holding a tiered product: (orders holding it, first day, new)."""
        tiers = self.tiers
        for offset in range(0, len(tiers), 3):
            if tiers[offset] == product:
                tiers[offset + 1] += 1
                return tiers[offset + 1], tiers[offset + 2], False
        if len(tiers) < 3 * max_tiers:
            tiers.extend((product, 1, day))
            return 1, day, True
        return 0, day, False

    def tier_of(self, product: int) -> tuple[int, int]:
        """(orders holding the product, first day), (0, 0) when never bought."""
        tiers = self.tiers
        for offset in range(0, len(tiers), 3):
            if tiers[offset] == product:
                return tiers[offset + 1], tiers[offset + 2]
        return 0, 0

    def __getstate__(self) -> tuple[object, ...]:
        s = self.slots
        packed = b"".join(
            _PACKED.pack(product, int(s[i]), int(s[i + 1]), round(s[i + 2] * 100),
                         round(s[i + 3] * 100), round(s[i + 4] * 100))
            for product, i in zip(self.tracked, range(0, len(s), SLOT), strict=True))
        return sparse_values((self.orders, self.first_day, self.fired_at, self.bulk_lines,
                              self.bulk_hits, packed, tuple(self.tiers)), _UP_SELL_DEFAULTS)

    def __setstate__(self, state: tuple[object, ...]) -> None:
        (self.orders, self.first_day, self.fired_at, self.bulk_lines, self.bulk_hits,
         packed, tiers) = restore_values(state, _UP_SELL_DEFAULTS)
        self.tracked, self.slots = [], []
        assert isinstance(packed, bytes)
        for product, lines, last, largest, fast, slow in _PACKED.iter_unpack(packed):
            self.tracked.append(product)
            self.slots += (lines, last, largest / 100, fast / 100, slow / 100)
        self.tiers = list(tiers)


# initial values of the snapshot fields, left out of snapshots
_UP_SELL_DEFAULTS: tuple[object, ...] = (0, 0, -1e9, 0, 0, b"", ())


def _hundredths(quantity: float) -> float:
    """A quantity rounded to hundredths (and capped), as kept in a slot."""
    return round(min(quantity, _MAX_QUANTITY), 2)
