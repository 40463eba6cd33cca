"""The state codec (sia/engine/state_codec.py): every value learned state holds comes back
equal, of the same type, with its shared references shared; objects are rebuilt without
running their code; anything outside the allowlist is refused, with where it was."""

from __future__ import annotations

import collections
import dataclasses
import itertools
import json
import math
import zlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import pytest
from pydantic_core import TzInfo
from river import compose, linear_model, preprocessing, stats

from sia.engine import state_codec
from sia.engine.state_codec import StateDecodeError, UnsupportedState
from sia.events.models import Customer, Order, OrderLine, parse_event

CALLS: list[str] = []  # methods of the classes below that ran


def round_trip(value: Any) -> Any:
    return state_codec.loads(state_codec.dumps(value))


def same(a: Any, b: Any) -> bool:
    """Equal, with the same types all the way down (and nan equal to nan)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a)
                                                     == math.copysign(1, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple | collections.deque):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


class Slotted:
    """A state class with slots, some left unset, and methods that must not run."""

    __slots__ = ("count", "label", "later")

    def __init__(self) -> None:
        CALLS.append("__init__")
        self.count = 0
        self.label = "x"

    def __setstate__(self, state: Any) -> None:
        CALLS.append("__setstate__")

    def __reduce__(self) -> Any:
        CALLS.append("__reduce__")
        return (Slotted, ())


class Plain:
    """A state class with a __dict__, and a property whose setter must not run."""

    def __init__(self, value: Any) -> None:
        CALLS.append("__init__")
        self.value = value

    def __getstate__(self) -> Any:
        CALLS.append("__getstate__")
        return {}

    def __setstate__(self, state: Any) -> None:
        CALLS.append("__setstate__")


@dataclasses.dataclass(frozen=True)
class Frozen:
    threshold: float = 0.5
    name: str = "t"

    def __post_init__(self) -> None:
        CALLS.append("__post_init__")


@dataclasses.dataclass(frozen=True, slots=True)
class FrozenSlots:
    at: datetime
    tags: frozenset[str]


class Pair(NamedTuple):
    left: int
    right: Any


class Queue(list[Any]):
    def __init__(self) -> None:
        super().__init__()
        CALLS.append("__init__")
        self.stamp = 0

    def append(self, item: Any) -> None:
        CALLS.append("append")
        super().append(item)


class Stranger:
    """Not on the allowlist."""


for allowed_class in (Slotted, Plain, Frozen, FrozenSlots, Pair, Queue):
    state_codec.allow(allowed_class)


@pytest.fixture(autouse=True)
def no_calls() -> None:
    CALLS.clear()


# round trips


def test_builtin_values_come_back_equal_and_of_the_same_type() -> None:
    value = {
        "ints": [0, -1, 2**200, True, False, None],
        "floats": [0.0, -0.0, 1.5, 1e-300, math.inf, -math.inf, math.nan],
        "text": ["", "é", "\ud800 lone surrogate", "\n\x00"],
        "tuple": (1, (2.5, "a"), ()), "set": {1, "b", (2, 3)}, "frozen": frozenset({4, 5}),
        "keys": {1: "int", (1, "a"): "tuple", None: "none", 2.5: "float", "s": "str"},
        "ordered": collections.OrderedDict([("b", 1), ("a", 2)]),
        "counter": collections.Counter({"x": 3, "y": 0}),
        "floaty": collections.defaultdict(float, {"z": 1.0}),
        "listy": collections.defaultdict(list, {1: [2]}), "bare": collections.defaultdict(),
        "deque": collections.deque([1, 2, 3], maxlen=3), "endless": collections.deque([4]),
        "bytes": b"\x00\xff varints",
        "times": [datetime(2011, 3, 2, 10, 15, tzinfo=TzInfo(0)),
                  datetime(2011, 3, 2, 10, 15, 0, 123, tzinfo=TzInfo(3600)),
                  datetime(2011, 3, 2, tzinfo=UTC),
                  datetime(2011, 3, 2, tzinfo=timezone(timedelta(hours=-5))),
                  datetime(2011, 3, 2, 1, 30), datetime(2011, 3, 2, 1, 30, fold=1)],
        "spans": [timedelta(0), timedelta(days=-1, microseconds=5), timedelta(days=400)],
    }
    back = round_trip(value)
    assert same(back, value)
    assert back["set"] == value["set"] and back["frozen"] == value["frozen"]
    assert type(back["frozen"]) is frozenset
    assert back["floaty"]["missing"] == 0.0 and back["listy"][9] == []
    assert back["bare"].default_factory is None
    assert back["deque"].maxlen == 3 and back["endless"].maxlen is None
    assert [type(t.tzinfo) for t in back["times"]] == [TzInfo, TzInfo, timezone, timezone,
                                                       type(None), type(None)]
    assert back["times"][5].fold == 1
    assert back["times"][2].tzinfo is UTC


def test_an_itertools_count_continues_where_it_was() -> None:
    count = itertools.count(5, 2)
    next(count)
    assert next(round_trip(count)) == 7


def test_the_document_is_json_with_a_format_and_a_class_table() -> None:
    document = json.loads(state_codec.dumps({"a": Frozen(), "b": [Frozen(0.7)]}))
    assert document["sia-state"] == state_codec.FORMAT
    assert document["classes"] == [[state_codec.class_name(Frozen), ["threshold", "name"]]]
    assert document["root"]["d"]["b"] == [{"o": [0, 0.7, "t"]}]


# shared references


def test_shared_references_stay_shared() -> None:
    shared: dict[str, Any] = {"k": 1}
    items = [1, 2]
    obj = Plain(items)
    state = {"a": shared, "b": [shared, shared], "c": (shared,), "d": {"x": shared},
             "lists": [items, obj, (items, obj)], "first": [shared]}
    back = round_trip(state)
    one = back["a"]
    assert one is back["b"][0] is back["b"][1] is back["c"][0] is back["d"]["x"]
    assert one is back["first"][0]
    one["k"] = 2  # mutating through one path is seen through the others
    assert back["d"]["x"]["k"] == 2 and back["c"][0]["k"] == 2
    lst, restored, pair = back["lists"]
    assert restored.value is lst and pair[0] is lst and pair[1] is restored
    restored.value.append(3)
    assert back["lists"][0] == [1, 2, 3]


def test_shared_tuples_and_objects_are_written_once() -> None:
    ladder = tuple(range(50))
    document = state_codec.dumps([ladder] * 20)
    assert document.count(b"49") == 1
    back = round_trip([ladder] * 20)
    assert all(t is back[0] for t in back)


def test_cycles_through_lists_dicts_and_objects_survive() -> None:
    loop: list[Any] = []
    loop.append(loop)
    mapping: dict[str, Any] = {}
    mapping["self"] = mapping
    obj = Plain(None)
    obj.value = [obj]
    back = round_trip({"list": loop, "dict": mapping, "obj": obj})
    assert back["list"][0] is back["list"]
    assert back["dict"]["self"] is back["dict"]
    assert back["obj"].value[0] is back["obj"]


def test_a_cycle_through_a_tuple_is_kept_and_deep_nesting_refused() -> None:
    holder: list[Any] = []
    holder.append((holder,))
    back = round_trip(holder)
    assert back[0][0] is back
    looped: tuple[list[Any]] = ([],)
    looped[0].append(looped)  # a tuple is a value: written again inside, equal
    again = round_trip(looped)
    assert again[0][0][0] is again[0]
    deep: list[Any] = []
    for _ in range(5_000):
        deep = [deep]
    with pytest.raises(UnsupportedState, match="nests too deeply"):
        state_codec.dumps(deep)


# objects: rebuilt without running their code


def test_objects_are_rebuilt_without_running_their_code() -> None:
    slotted = Slotted()
    plain = Plain({"nested": Frozen(0.25)})
    queue = Queue()
    queue.extend([(1, "a"), (2, "b")])
    queue.stamp = 9
    CALLS.clear()
    back = round_trip([slotted, plain, queue, Pair(1, [2]), FrozenSlots(datetime(2011, 1, 1,
                       tzinfo=UTC), frozenset({"a"}))])
    assert CALLS == [], f"ran {CALLS}"  # no __init__, __setstate__, __reduce__, append
    restored, restored_plain, restored_queue, pair, frozen_slots = back
    assert type(restored) is Slotted and (restored.count, restored.label) == (0, "x")
    assert not hasattr(restored, "later")  # an unset slot stays unset
    assert restored_plain.value == {"nested": Frozen(0.25)}
    assert type(restored_queue) is Queue and list(restored_queue) == [(1, "a"), (2, "b")]
    assert restored_queue.stamp == 9
    assert pair == Pair(1, [2]) and type(pair) is Pair
    assert frozen_slots == FrozenSlots(datetime(2011, 1, 1, tzinfo=UTC), frozenset({"a"}))
    with pytest.raises(dataclasses.FrozenInstanceError):
        back[4].at = None  # still frozen


def test_events_come_back_equal_and_with_their_fields_set() -> None:
    order = parse_event({"type": "order", "event_id": "o-1", "occurred_at":
                         "2011-03-02T10:15:00+00:00", "customer_id": "C42",
                         "order_id": "1001", "lines": [{"product_id": "22727",
                                                        "quantity": 12, "unit_price": 3.75}]})
    customer = Customer(event_id="c-1", occurred_at=datetime(2011, 1, 1, tzinfo=UTC),
                        customer_id="C42", attributes={"tier": "gold"})
    cached = (order.day, order.amount, order.priced_lines)  # cached properties
    back_order, back_customer = round_trip([order, customer])
    assert "day" not in back_order.__dict__  # left out, computed again, the same
    assert (back_order.day, back_order.amount, back_order.priced_lines) == cached
    assert type(back_order) is Order and back_order == order
    assert type(back_order.lines[0]) is OrderLine
    assert hash(back_order.lines[0]) == hash(order.lines[0])
    assert back_order.model_fields_set == order.model_fields_set
    assert back_order.model_dump() == order.model_dump()
    assert type(back_order.occurred_at.tzinfo) is type(order.occurred_at.tzinfo)
    assert back_customer == customer and back_customer.attributes == {"tier": "gold"}


def test_river_models_continue_exactly() -> None:
    def samples(n: int, start: int = 0) -> list[tuple[dict[str, float], bool]]:
        return [({"x": math.sin(i), "y": (i % 7) / 3}, i % 3 == 0) for i in range(start, n)]

    model = compose.Pipeline(preprocessing.StandardScaler(), linear_model.LogisticRegression())
    quantile, var = stats.Quantile(0.9), stats.Var()
    for x, y in samples(40):
        model.learn_one(x, y)
        quantile.update(x["x"])
        var.update(x["y"])
    restored, restored_quantile, restored_var = round_trip([model, quantile, var])
    assert restored._last_step_cached is restored.steps["LogisticRegression"]
    assert restored._plan[0][1] is restored.steps["StandardScaler"]
    for x, y in samples(80, 40):
        for m in (model, restored):
            m.learn_one(x, y)
        for q in (quantile, restored_quantile):
            q.update(x["x"])
        for v in (var, restored_var):
            v.update(x["y"])
        assert restored.predict_proba_one(x) == model.predict_proba_one(x)
        assert restored_quantile.get() == quantile.get()
        assert restored_var.get() == var.get()


# refusals


def test_encoding_refuses_a_type_off_the_allowlist_naming_it_and_where() -> None:
    state = {"detectors": {"odd": Plain([1, Stranger()])}}
    with pytest.raises(UnsupportedState) as info:
        state_codec.dumps(state)
    message = str(info.value)
    assert state_codec.class_name(Stranger) in message
    assert "state['detectors']['odd'].value[1]" in message


@pytest.mark.parametrize("value, named", [
    (collections.defaultdict(lambda: 0), "default_factory"),
    (print, "builtin_function_or_method"),
    (datetime(2011, 1, 1, tzinfo=ZoneInfo("Europe/London")), "zone"),
    (datetime(2011, 1, 1, tzinfo=timezone(timedelta(0), "Custom")), "zone"),
    (itertools.count(0.5), "not of integers"),
    (type, "type"),
])
def test_encoding_refuses_code_and_what_it_cannot_rebuild(value: Any, named: str) -> None:
    with pytest.raises(UnsupportedState, match=named):
        state_codec.dumps({"x": [value]})


def document(classes: list[Any], root: Any) -> bytes:
    return json.dumps({"sia-state": state_codec.FORMAT, "classes": classes,
                       "root": root}).encode()


@pytest.mark.parametrize("name", ["os:system", "posix:system", "subprocess:Popen",
                                  "builtins:eval", "builtins:exec", "pickle:loads",
                                  "sia.engine.engine:Engine", "sia.cli.main:replay"])
def test_decoding_refuses_a_class_off_the_allowlist(name: str) -> None:
    crafted = document([[name, ["args"]]], {"o": [0, "touch /tmp/sia-pwned"]})
    with pytest.raises(StateDecodeError, match="not allowed"):
        state_codec.loads(crafted)


@pytest.mark.parametrize("classes, root, match", [
    ([], {"eval": "1"}, "unknown tag"),
    ([], {"dd": ["os.system", "k", 1]}, "factory"),
    ([], {"r": 0}, "before its object"),
    ([], [{"=": 0}, {"d": {}, "=": 0}], "repeated label"),
    ([], {"f": "1e999"}, "float tag"),
    ([], {"t": [1], "s": [2]}, "tagged value"),
    ([], {"q": [-1, 1]}, "maxlen"),
    ([], {"o": [0]}, "not in the table"),
    ([[state_codec.class_name(Slotted), ["count", "__class__"]]], {"o": [0, 1, 2]},
     "no field '__class__'"),
    ([[state_codec.class_name(Plain), ["__reduce__"]]], {"o": [0, 1]}, "no field"),
    ([["sia.detectors.drift:DriftDetector", ["observe"]]], {"o": [0, 1]}, "hide its method"),
    ([[state_codec.class_name(Plain), ["value"]]], {"o": [0, 1, 2]}, "2 values for 1"),
    ([[state_codec.class_name(Plain), ["value"]]], {"o": [0, {"u": 0}]}, "unset"),
    ([["sia.events.models:Customer", ["event_id"]]], {"o": [0, [], "x"]}, "fields"),
    ([["builtins:eval"]], None, "bad class entry"),
])
def test_decoding_refuses_malformed_documents(classes: Any, root: Any, match: str) -> None:
    with pytest.raises(StateDecodeError, match=match):
        state_codec.loads(document(classes, root))


def test_decoding_refuses_what_is_not_a_state_document() -> None:
    for data, match in [(b"NaN", "not a JSON value"), (b"[1", "not valid JSON"),
                        (b"{}", "not a SIA state document"),
                        (json.dumps({"sia-state": 99, "classes": [], "root": 1}).encode(),
                         "format 99"),
                        (b'{"sia-state":1,"classes":[],"root":Infinity}', "not a JSON value")]:
        with pytest.raises(StateDecodeError, match=match):
            state_codec.loads(data)


def test_rust_quantile_state_is_checked_before_river_reads_it() -> None:
    good = json.loads(state_codec.dumps(stats.Quantile(0.5)._quantile))["root"]["rq"]
    assert len(good) == 23
    for index, bad, match in [(0, 2.0, "q 2.0"), (21, 6, "6 heights"), (22, 1, "sorted 1"),
                              (3, "x", "not a float")]:
        crafted = list(good)
        crafted[index] = bad
        with pytest.raises(StateDecodeError, match=match):
            state_codec.loads(document([], {"rq": crafted}))
    with pytest.raises(StateDecodeError, match="23"):
        state_codec.loads(document([], {"rq": good[:5]}))


def test_decompression_is_bounded_and_checked() -> None:
    payload = zlib.compress(state_codec.dumps(list(range(10_000))))
    assert state_codec.loads(state_codec.decompress(payload)) == list(range(10_000))
    with pytest.raises(StateDecodeError, match="expands past"):
        state_codec.decompress(payload, limit=1_000)
    with pytest.raises(StateDecodeError, match="truncated"):
        state_codec.decompress(payload[:-10])
    with pytest.raises(StateDecodeError, match="not compressed"):
        state_codec.decompress(b"\x80\x05 a pickle")


def test_the_allowlist_is_explicit() -> None:
    names = state_codec.allowed()
    assert "sia.catalog:Catalog" in names and "river.stats.var:Var" in names
    assert "sia.detectors.drift:DriftDetector" in names  # registered detectors
    assert "sia.detectors.drift:DriftParams" in names  # and their thresholds
    assert not [n for n in names if n.startswith(("builtins:", "os:", "subprocess:"))]
    with pytest.raises(TypeError, match="overrides __new__"):
        state_codec.allow(datetime)


def test_state_written_before_the_catalog_moved_still_loads() -> None:
    from sia.catalog import Catalog

    catalog = Catalog()
    catalog.update(Customer(event_id="c1", occurred_at=datetime(2024, 1, 1, tzinfo=UTC),
                           customer_id="C1", name="Acme"))
    data = state_codec.dumps({"catalog": catalog})
    assert b'"sia.catalog:Catalog"' in data
    old = data.replace(b'"sia.catalog:Catalog"', b'"sia.engine.catalog:Catalog"')
    loaded = state_codec.loads(old)["catalog"]
    assert type(loaded) is Catalog and loaded.customers["C1"].name == "Acme"
