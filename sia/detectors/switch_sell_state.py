"""Learned state of the switch-sell detector: a customer's regular products, packed small,
and the per-product statistics shared by all customers.

Per customer (`CustomerProducts`): a layered Bloom filter of the products they have
bought (64 bytes per 48 products; false positives only make a first purchase look like a
second), and a few "slots" for the products bought in at least two orders: how many
orders held it, the day of the last one, how many returns named it, and whether it has
lapsed. Pending switches (a new product resembling a regular one that was missing from
the same order) wait there until the regular one lapses or comes back.

Per product (`ProductStats`, one small record per product, bounded by the catalogue):
fast and slow decayed counts of order lines (the product's recent sales against its
usual share of all sales), decayed counts of regular buyers and of those who stopped
buying it while still ordering, a typical unit price, name tokens, and the strongest few
"moved to" products learned from customers who dropped it.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from sia.detectors.packing import restore_values, sparse_values

LAYER_BYTES = 64
LAYER_BITS = LAYER_BYTES * 8
LAYER_CAPACITY = 48  # products per layer: about 1.5% false positives with 3 hashes
_MULTIPLIERS = (0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D)
_SLOT = struct.Struct("<IHHBB")  # product, orders, last day, returns, flags
_PENDING = struct.Struct("<IIH")  # regular product, new product, day
LAPSED = 1
STOP_WORDS = frozenset({"THE", "AND", "FOR", "WITH", "SET", "PACK", "OF", "DESIGN", "ASSORTED"})


def bloom_mask(product: int) -> int:
    """The three bits a product sets in a 512-bit layer, as an int."""
    x = product + 1
    mask = 0
    for multiplier, shift in zip(_MULTIPLIERS, (7, 11, 13), strict=True):
        mask |= 1 << (((x * multiplier) >> shift) % LAYER_BITS)
    return mask


def any_layer(layers: list[int], mask: int) -> bool:
    """Whether some Bloom layer holds every bit of `mask`."""
    for layer in layers:  # noqa: SIM110 (a plain loop is twice as fast as any() here)
        if layer & mask == mask:
            return True
    return False


class CustomerProducts:
    """What one customer buys regularly, in a few hundred bytes at most."""

    __slots__ = ("bloom", "bloom_items", "checked_at", "counts", "flags", "last_days",
                 "orders", "pending", "products", "returns")

    def __init__(self) -> None:
        self.orders = 0
        self.checked_at = -1e9  # day of the last switch-sell alert about this customer
        self.bloom: list[int] = []  # layers of 512 bits
        self.bloom_items = 0  # products in the newest layer
        self.products: list[int] = []  # slots: products bought in two orders or more
        self.counts: list[int] = []
        self.last_days: list[int] = []
        self.returns: list[int] = []
        self.flags: list[int] = []
        self.pending: list[tuple[int, int, int]] = []  # (regular, new product, day)

    # the Bloom filter of products ever bought
    def seen(self, mask: int) -> bool:
        """Whether the customer probably bought the product (its `bloom_mask`) before."""
        return any_layer(self.bloom, mask)

    def remember(self, mask: int) -> None:
        """Add a product (its `bloom_mask`) to the filter; a new layer when the newest is full."""
        if not self.bloom or self.bloom_items >= LAYER_CAPACITY:
            self.bloom.append(0)
            self.bloom_items = 0
        self.bloom[-1] |= mask
        self.bloom_items += 1

    # slots
    def slot(self, product: int) -> int:
        """Index of the product's slot, -1 when it has none."""
        return self.products.index(product) if product in self.products else -1

    def add_slot(self, product: int, count: int, day: int, max_slots: int,
                 stale_days: float) -> bool:
        """Track a product now bought regularly; False when there is no room for it.

        When every slot is taken, the product bought longest ago makes room if it has
        not been bought for `stale_days` (the customer has dropped it); otherwise the
        newcomer waits, so a product is counted as a regular of this customer once.
        """
        if len(self.products) >= max_slots:
            oldest = min(self.last_days)
            if day - oldest <= stale_days:
                return False
            worst = self.last_days.index(oldest)
            evicted = self.products[worst]
            for column in (self.products, self.counts, self.last_days, self.returns,
                           self.flags):
                del column[worst]
            if self.pending:
                self.pending = [p for p in self.pending if p[0] != evicted]
        self.products.append(product)
        self.counts.append(count)
        self.last_days.append(day)
        self.returns.append(0)
        self.flags.append(0)
        return True

    def __getstate__(self) -> tuple[object, ...]:
        slots = b"".join(
            _SLOT.pack(p, min(n, 65535), min(max(d, 0), 65535), min(r, 255), f)
            for p, n, d, r, f in zip(self.products, self.counts, self.last_days,
                                     self.returns, self.flags, strict=True))
        pending = b"".join(_PENDING.pack(a, b, min(max(d, 0), 65535))
                           for a, b, d in self.pending)
        bloom = b"".join(layer.to_bytes(LAYER_BYTES, "little") for layer in self.bloom)
        return sparse_values((self.orders, self.checked_at, bloom, self.bloom_items, slots,
                              pending), _CUSTOMER_DEFAULTS)

    def __setstate__(self, state: tuple[object, ...]) -> None:
        (self.orders, self.checked_at, bloom, self.bloom_items, slots,
         pending) = restore_values(state, _CUSTOMER_DEFAULTS)
        self.bloom = [int.from_bytes(bloom[i:i + LAYER_BYTES], "little")
                      for i in range(0, len(bloom), LAYER_BYTES)]
        rows = list(_SLOT.iter_unpack(slots))
        self.products = [r[0] for r in rows]
        self.counts = [r[1] for r in rows]
        self.last_days = [r[2] for r in rows]
        self.returns = [r[3] for r in rows]
        self.flags = [r[4] for r in rows]
        self.pending = [(a, b, d) for a, b, d in _PENDING.iter_unpack(pending)]


# initial values of a customer's snapshot fields, left out of snapshots
_CUSTOMER_DEFAULTS: tuple[object, ...] = (0, -1e9, b"", 0, b"", b"")


class ProductStats:
    """Per-product sales trend, regular buyers, lapses and learned substitutes.

    Decayed counts are kept in inflated units, as in `copurchase.CoPurchase`: an
    increment on day t weighs exp(rate * (t - origin)), so decaying every count costs
    nothing; values are deflated on read, and everything is rebased before it overflows.
    """

    def __init__(self, fast_half_life: float, slow_half_life: float,
                 memory_half_life: float, max_substitutes: int) -> None:
        self.fast_rate = math.log(2) / fast_half_life  # per day
        self.slow_rate = math.log(2) / slow_half_life
        self.memory_rate = math.log(2) / memory_half_life
        self.max_substitutes = max_substitutes
        self.origin: float | None = None  # day at which an increment weighs 1
        self.first_total_day = 0.0
        self.index: dict[str, int] = {}
        self.ids: list[str] = []
        self.masks: list[int] = []  # Bloom bits of each product
        self.fast: list[float] = []  # inflated order lines
        self.slow: list[float] = []
        self.first_day: list[float] = []
        self.price: list[float] = []  # EW unit price
        self.regular: list[float] = []  # inflated customers who bought it regularly
        self.lapsed: list[float] = []  # ... and then stopped while still ordering
        self.returned: list[int] = []  # return lines naming it
        self.moves: list[dict[int, float]] = []  # B -> inflated customers who moved to B
        self.tokens: list[frozenset[int]] = []
        self.category: list[str | None] = []
        self.total_fast = 0.0
        self.total_slow = 0.0
        self._day = -1.0  # weights of the current day, memoised
        self._weights = (1.0, 1.0, 1.0)
        self.vocabulary: dict[str, int] = {}
        self.by_token: dict[int, list[int]] = {}
        self.by_category: dict[str, list[int]] = {}
        # derived, rebuilt on demand (not in snapshots): look-alikes, and the deflators of
        # the day last asked for (detection asks for the same day again and again)
        self._alike_cache: dict[tuple[int, int], tuple[int, list[int]]] = {}
        self._deflators: tuple[tuple[float, float | None], tuple[float, float, float]] = (
            (math.nan, None), (1.0, 1.0, 1.0))

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        del state["_alike_cache"], state["_deflators"]
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._alike_cache = {}
        self._deflators = ((math.nan, None), (1.0, 1.0, 1.0))

    def add(self, product_id: str, name: str | None, category: str | None) -> int:
        """Index of a new product, its name words and category indexed for look-alikes."""
        i = self.index[product_id] = len(self.ids)
        self.ids.append(product_id)
        self.masks.append(bloom_mask(i))
        for column in (self.fast, self.slow, self.regular, self.lapsed, self.price):
            column.append(0.0)
        self.first_day.append(-1.0)
        self.returned.append(0)
        self.moves.append({})
        words = dict.fromkeys(w for w in re.findall(r"[A-Z]{3,}", (name or "").upper())
                              if w not in STOP_WORDS)
        ids = []
        for word in words:
            token = self.vocabulary.get(word)
            if token is None:
                token = self.vocabulary[word] = len(self.vocabulary)
            ids.append(token)
            self.by_token.setdefault(token, []).append(i)
        self.tokens.append(frozenset(ids))
        self.category.append(category or None)
        if category:
            self.by_category.setdefault(category, []).append(i)
        return i

    def weights(self, day: float) -> tuple[float, float, float]:
        """Inflated weight of an increment on `day`: (fast, slow, memory)."""
        if day == self._day:
            return self._weights
        if self.origin is None:
            self.origin = self.first_total_day = day
        elapsed = day - self.origin
        if elapsed * self.fast_rate > 50.0:
            self._rebase(day)
            elapsed = 0.0
        self._day = day
        self._weights = (math.exp(self.fast_rate * elapsed), math.exp(self.slow_rate * elapsed),
                         math.exp(self.memory_rate * elapsed))
        return self._weights

    def deflators(self, day: float) -> tuple[float, float, float]:
        """Factors turning inflated units into counts as of `day`: (fast, slow, memory);
        never as of a day before the origin (decay does not run backwards for a late
        order: exp of a large negative elapsed time overflowed)."""
        if self.origin is None:
            return 1.0, 1.0, 1.0
        key = (day, self.origin)
        cached = self._deflators
        if cached[0] == key:
            return cached[1]
        elapsed = max(day - self.origin, 0.0)
        factors = (math.exp(-self.fast_rate * elapsed), math.exp(-self.slow_rate * elapsed),
                   math.exp(-self.memory_rate * elapsed))
        self._deflators = (key, factors)
        return factors

    def _rebase(self, day: float) -> None:
        f, s, m = self.deflators(day)
        self.fast = [x * f for x in self.fast]
        self.slow = [x * s for x in self.slow]
        self.total_fast *= f
        self.total_slow *= s
        self.regular = [x * m for x in self.regular]
        self.lapsed = [x * m for x in self.lapsed]
        for row in self.moves:
            for key in row:
                row[key] *= m
        self.origin = day
        self._day = -1.0

    # sales trend
    def sell(self, products: Sequence[int], lines: Sequence[Sequence[Any]], day: float,
             quantity: list[float]) -> None:
        """One order: one (product id, unit price, quantity) line for each distinct
        product, `products` their indexes; `quantity`, the caller's per product EW
        quantity of a line, learns the lines too (in the same loop: it runs for every
        line). A product's unit price becomes `price_after(product, unit price)`."""
        wf, ws, _ = self.weights(day)
        n = len(products)
        self.total_fast += n * wf
        self.total_slow += n * ws
        fast, slow, price, first = self.fast, self.slow, self.price, self.first_day
        for product, (_, unit_price, qty) in zip(products, lines, strict=True):
            fast[product] += wf
            slow[product] += ws
            if first[product] < 0:
                first[product] = day
                price[product] = unit_price
            else:
                price[product] += 0.2 * (unit_price - price[product])
            q = quantity[product]
            quantity[product] = q + 0.2 * (qty - q) if q else qty

    def price_after(self, product: int, unit_price: float) -> float:
        """The product's typical unit price once a line at `unit_price` is sold (`sell`)."""
        if self.first_day[product] < 0:
            return unit_price
        return self.price[product] + 0.2 * (unit_price - self.price[product])

    def weekly(self, product: int, day: float) -> tuple[float, float, float, float]:
        """(recent, usual) order lines a week of the product and (recent, usual) of all
        products as of `day`, corrected for the time each has been observed."""
        if self.origin is None or self.first_day[product] < 0:
            return 0.0, 0.0, 0.0, 0.0
        f, s, _ = self.deflators(day)
        rf, rs = self.fast_rate, self.slow_rate
        age = max(day - self.first_day[product], 1.0)
        tage = max(day - self.first_total_day, 1.0)
        return (7 * rf * f * self.fast[product] / -math.expm1(-rf * age),
                7 * rs * s * self.slow[product] / -math.expm1(-rs * age),
                7 * rf * f * self.total_fast / -math.expm1(-rf * tage),
                7 * rs * s * self.total_slow / -math.expm1(-rs * tage))

    # regular buyers, lapses, moves
    def add_regular(self, product: int, day: float) -> None:
        """A customer now buys the product regularly."""
        self.regular[product] += self.weights(day)[2]

    def add_lapse(self, product: int, day: float) -> None:
        """A regular buyer stopped buying the product while still ordering."""
        self.lapsed[product] += self.weights(day)[2]

    def add_move(self, product: int, to: int, day: float) -> None:
        """A customer who dropped `product` took up `to`."""
        row = self.moves[product]
        row[to] = row.get(to, 0.0) + self.weights(day)[2]
        if len(row) > 2 * self.max_substitutes:
            keep = sorted(row.items(), key=itemgetter(1), reverse=True)[: self.max_substitutes]
            row.clear()
            row.update(keep)

    def memory(self, product: int, day: float) -> tuple[float, float]:
        """(regular buyers, of whom stopped), decayed to `day`."""
        m = self.deflators(day)[2]
        return self.regular[product] * m, self.lapsed[product] * m

    def movers(self, product: int, day: float) -> list[tuple[int, float]]:
        """Products customers who dropped `product` moved to, most customers first."""
        m = self.deflators(day)[2]
        return sorted(((b, n * m) for b, n in self.moves[product].items()),
                      key=lambda x: -x[1])

    # likeness
    def alike(self, a: int, b: int, min_shared_words: int, max_price_ratio: float) -> bool:
        """Look-alikes: similar price, and enough shared name words (one fewer when both
        are in the same category; products in different categories never are)."""
        pa, pb = self.price[a], self.price[b]
        if pa > 0 and pb > 0 and max(pa, pb) > max_price_ratio * min(pa, pb):
            return False
        return same_kind(self.tokens[a], self.tokens[b], self.category[a], self.category[b],
                         min_shared_words)

    def look_alikes(self, product: int, min_shared_words: int) -> list[int]:
        """Products of the same kind (`same_kind`), in first-seen order.

        Names and categories never change once a product is added, so the answer only
        grows as products are added: it is kept, and extended with the products added
        since (in index order, so the list stays in first-seen order). Do not mutate it.
        """
        key = (product, min_shared_words)
        cached = self._alike_cache.get(key)
        known = len(self.ids)
        if cached is None:
            found = self._look_alikes(product, min_shared_words)
            self._alike_cache[key] = (known, found)
            return found
        seen, found = cached
        if seen < known:
            tokens, category = self.tokens[product], self.category[product]
            categories, all_tokens = self.category, self.tokens
            for other in range(seen, known):
                if other == product:
                    continue
                if category is not None and not tokens:
                    if categories[other] == category:
                        found.append(other)
                    continue
                n = len(tokens & all_tokens[other])
                if n and (n >= min_shared_words - 1 and categories[other] == category
                          if category is not None and categories[other] is not None
                          else n >= min_shared_words):
                    found.append(other)
            self._alike_cache[key] = (known, found)
        return found

    def _look_alikes(self, product: int, min_shared_words: int) -> list[int]:
        tokens, category = self.tokens[product], self.category[product]
        if category is not None and not tokens:
            return [p for p in self.by_category.get(category, ()) if p != product]
        shared: dict[int, int] = {}
        for token in sorted(tokens):
            for other in self.by_token.get(token, ()):
                if other != product:
                    shared[other] = shared.get(other, 0) + 1
        # each shared token was counted once: shared[p] is len(tokens & tokens of p), so
        # `same_kind` is decided without intersecting the sets again
        categories = self.category
        return sorted(p for p, n in shared.items() if (
            n >= min_shared_words - 1 and categories[p] == category
            if category is not None and categories[p] is not None
            else n >= min_shared_words))


def same_kind(ta: frozenset[int], tb: frozenset[int], ca: str | None, cb: str | None,
              min_shared_words: int) -> bool:
    """Enough shared name words; in one category, one word fewer (none without names)."""
    if ca is not None and cb is not None:
        if ca != cb:
            return False
        if not ta or not tb:
            return True
        return len(ta & tb) >= min_shared_words - 1
    return len(ta & tb) >= min_shared_words
