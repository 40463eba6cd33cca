"""Learned state as data: a versioned, schema'd encoding that never runs code from it.

Snapshots (sia/engine/snapshot.py) and Kafka checkpoints (sia/engine/partitions.py) were
pickles, and a pickle names the callables that rebuild it: a crafted file ran a shell
command on `sia replay --state` (issue 18). This encoding is JSON (compressed by the
caller) in which the values JSON has stand for themselves (str, int, finite float, bool,
None, list) and every other value is a JSON object of one tag:

    {"t": [...]} tuple        {"s": [...]} set         {"fs": [...]} frozenset
    {"d": {...}} dict with str keys             {"m": [k, v, k, v, ...]} any other dict
    {"od": [k, v, ...]} OrderedDict             {"c": [k, v, ...]} Counter
    {"dd": [factory, k, v, ...]} defaultdict (factory: one of `_FACTORIES`, or null)
    {"q": [maxlen, item, ...]} deque            {"b": "base64"} bytes
    {"f": "nan" | "inf" | "-inf"} float         {"td": [days, seconds, us]} timedelta
    {"dt": "ISO 8601"} datetime with pydantic's fixed-offset zone (events' times),
    {"dz": ...} with a datetime.timezone, {"dn": ...} naive ([iso, 1] when fold is 1)
    {"n": [start, step]} itertools.count
    {"o": [class, ...fields]} an object of an allowed class (below)
    {"rq": [21 floats, n_heights, sorted]} river's Rust quantile (RsQuantile)
    {"vd": dict node} river's Rust VectorDict
    {"u": 0} a slot left unset                  {"r": n} the object labelled n

Shared references survive: an object met a second time is written `{"r": n}` and its
first occurrence carries the label, as `"=": n` in its tag object, or a first element
`{"=": n}` for a list; decoding gives one object, reachable from both places. (Tuples and
frozensets are values: shared once written, but a cycle back to one from inside it
writes it again there, equal.)

A document is `{"sia-state": FORMAT, "classes": [[name, [field, ...]], ...], "root": node}`:
objects are written as values in the order of their class entry's fields, so field
names appear once per document. Decoding only constructs classes on an explicit
allowlist: SIA's state classes (`_SIA_CLASSES`), registered detectors and their
thresholds, classes a plug-in passes to `allow`, and the river models SIA keeps
(`_RIVER_CLASSES`); nothing is imported because a document names it. An instance is
created without calling its `__init__`, `__setstate__` or `__reduce__` (`allow`
refuses a class that overrides `__new__`): `object.__new__` (`tuple.__new__` for a named
tuple, `list.__new__` and `list.extend` for a list subclass), then its slots are set
through their member descriptors and its `__dict__` is assigned whole, and a field may
not hide a method. A pydantic model gets its fields (not its cached properties, which
are computed again) and the set of fields given, unvalidated, as pydantic's own copy
does. So what a document holds can shape values, never behaviour: the only code of an
allowed class that can run while decoding is `__hash__` and `__eq__`, of an object
used as a dict key or put in a set. The exceptions are river's two Rust types: a
VectorDict is built by its constructor from a plain dict (no mask, no default
factory), and an RsQuantile from the 170 bytes of its P² state, packed here from 21
floats, a count (0..5) and a flag (see `_decode_rs_quantile` for why that is safe).

Anything else refuses: encoding raises `UnsupportedState` naming the type and where it
is in the state; decoding raises `StateDecodeError` (snapshot.py and partitions.py turn
it into a SnapshotError), before anything is built for a class off the allowlist (the
class table is checked first).
"""

from __future__ import annotations

import base64
import collections
import functools
import importlib
import inspect
import itertools
import json
import math
import operator
import re
import struct
import types
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic_core import TzInfo

FORMAT = 1  # the document layout; bump when tags or the object layout change
MAX_DECODED = 1 << 30  # bytes of JSON a compressed payload may expand to (1 GiB)

T = TypeVar("T")


class StateError(ValueError):
    """State that the codec cannot write or read."""


class UnsupportedState(StateError):
    """A value of a type the codec does not allow (encoding)."""


class StateDecodeError(StateError):
    """A document that is not valid state, or names something not allowed (decoding)."""


# -- the allowlist ------------------------------------------------------------------------

# SIA's own state classes ("module:qualname"), imported from here when first needed
_SIA_CLASSES = (
    "sia.catalog:Catalog",
    "sia.detectors.alignment:Labels",
    "sia.detectors.alignment_state:CustomerAlignment",
    "sia.detectors.alignment_state:ValueHistogram",
    "sia.detectors.basket:CustomerBasket",
    "sia.detectors.copurchase:CoPurchase",
    "sia.detectors.margin_state:BucketState",
    "sia.detectors.margin_state:MarginState",
    "sia.detectors.margin_state:Opened",
    "sia.detectors.margin_state:Outcome",
    "sia.detectors.margin_state:ProductState",
    "sia.detectors.performance_series:Dispersion",
    "sia.detectors.performance_series:RepBook",
    "sia.detectors.performance_series:Season",
    "sia.detectors.performance_series:Series",
    "sia.detectors.rhythm:CustomerRhythm",
    "sia.detectors.silence:SilenceModel",
    "sia.detectors.switch_sell_state:CustomerProducts",
    "sia.detectors.switch_sell_state:ProductStats",
    "sia.detectors.trend_state:CustomerTrend",
    "sia.detectors.up_sell_breaks:Break",
    "sia.detectors.up_sell_breaks:PriceBreaks",
    "sia.detectors.up_sell_model:BreakModel",
    "sia.detectors.up_sell_state:UpSellCustomer",
    "sia.engine.merge:EventTimeMerge",
    "sia.engine.population:Outbox",
    "sia.engine.population:PopulationExchange",
    "sia.engine.seen:SeenEvents",
    "sia.events.models:Customer",
    "sia.events.models:Interaction",
    "sia.events.models:Opportunity",
    "sia.events.models:Order",
    "sia.events.models:OrderLine",
    "sia.events.models:Product",
    "sia.events.models:Rep",
    "sia.events.models:Return",
    "sia.policy.cooldown:MemoryCooldowns",
)
# classes that moved, by the name state written before the move gives them
_RENAMED: dict[str, str] = {"sia.engine.catalog:Catalog": "sia.catalog:Catalog"}
# the river models detectors keep (plain Python classes; the Rust ones have tags)
_RIVER_CLASSES = (
    "river.compose.pipeline:Pipeline",
    "river.linear_model.log_reg:LogisticRegression",
    "river.optim.initializers:Zeros",
    "river.optim.losses:Log",
    "river.optim.schedulers:Constant",
    "river.optim.sgd:SGD",
    "river.preprocessing.scale:StandardScaler",
    "river.stats.mean:Mean",
    "river.stats.quantile:Quantile",
    "river.stats.var:Var",
)
# what a defaultdict may call for a missing key
_FACTORIES: dict[str, Callable[[], Any]] = {
    "float": float, "int": int, "list": list, "dict": dict, "set": set}


@dataclass(frozen=True)
class _Layout:
    """How instances of an allowed class are written and rebuilt (from the class alone,
    never from a document)."""

    cls: type[Any]
    name: str
    slots: dict[str, Any]  # slot name -> its member descriptor, base classes first
    has_dict: bool
    model: bool  # a pydantic model: the fields set, then its fields (not its cached
    # properties, in its __dict__ too: computed again when asked for)
    is_list: bool  # a list subclass: its items, then its slots and attributes
    is_tuple: bool  # a named tuple: its items, as its fields
    # all the slots at once (None: read them one by one, some may be unset)
    read_slots: Callable[[Any], tuple[Any, ...]] | None


_ALLOWED: dict[str, _Layout] = {}
_LAYOUTS: dict[type[Any], _Layout] = {}
_loaded = False


def class_name(cls: type[Any]) -> str:
    """How a class is named in a document: "module:qualname"."""
    return f"{cls.__module__}:{cls.__qualname__}"


def allow(cls: type[T]) -> type[T]:
    """Allow instances of `cls` in learned state (usable as a class decorator: for a
    plug-in detector's own state classes). Its instances are written as their slots
    and attributes, and rebuilt without calling any of its methods."""
    if cls not in _LAYOUTS:
        layout = _layout_of(cls)
        _ALLOWED[layout.name] = layout
        _LAYOUTS[cls] = layout
    return cls


def _layout_of(cls: type[Any]) -> _Layout:
    """The layout of a class that can be rebuilt from its fields alone."""
    if not isinstance(cls, type) or cls.__module__ == "builtins":
        raise TypeError(f"{cls!r} is not a class the state codec can allow")
    name = class_name(cls)
    if issubclass(cls, tuple) and cls.__bases__ == (tuple,) and hasattr(cls, "_fields"):
        return _Layout(cls, name, {}, False, False, False, True, None)
    is_list = issubclass(cls, list)
    base: Any = list if is_list else object
    klass: Any = cls
    if klass.__new__ is not base.__new__:
        raise TypeError(f"{name} overrides __new__: the state codec cannot rebuild it "
                        "without running its code")
    builtin = [b for b in cls.__mro__ if b.__module__ == "builtins" and b not in (object, list)]
    if builtin or (is_list and cls.__mro__[1:].count(list) != 1):
        raise TypeError(f"{name} extends a builtin type the state codec cannot rebuild")
    if klass.__getattribute__ is not base.__getattribute__:
        raise TypeError(f"{name} overrides __getattribute__")
    model = issubclass(cls, BaseModel)
    slots: dict[str, Any] = {}  # a model's are pydantic's bookkeeping, set by name
    for owner in () if model else reversed(cls.__mro__):
        for key, value in vars(owner).items():
            if isinstance(value, types.MemberDescriptorType):
                slots[key] = value
    shadowed = [key for key, slot in slots.items() if getattr(cls, key) is not slot]
    if shadowed:
        raise TypeError(f"{name}: slots {shadowed} are shadowed by class attributes")
    has_dict = any("__dict__" in vars(k) for k in cls.__mro__)
    read = operator.attrgetter(*slots) if len(slots) > 1 else None
    return _Layout(cls, name, slots, has_dict, model, is_list, False, read)


def _load_allowlist() -> None:
    """Import and allow the classes named in `_SIA_CLASSES` and `_RIVER_CLASSES`, and
    every registered detector with its thresholds (once; new detectors on each call)."""
    global _loaded
    if not _loaded:
        for entry in (*_SIA_CLASSES, *_RIVER_CLASSES):
            module, _, qualname = entry.partition(":")
            found: Any = importlib.import_module(module)
            for part in qualname.split("."):
                found = getattr(found, part)
            allow(found)
        _loaded = True
    from sia.detectors.base import registered  # imports the built-in detectors

    for detector in registered().values():
        if detector not in _LAYOUTS:
            allow(detector)
            allow(detector.params_type)


def allowed() -> list[str]:
    """The names of the classes allowed in state, sorted (for messages and tests)."""
    _load_allowlist()
    return sorted(_ALLOWED)


# -- river's Rust types -------------------------------------------------------------------

_RS_QUANTILE = struct.Struct("<21dB?")  # bincode of river's P² Quantile<f64>


def _rust_types() -> tuple[Any, Any]:
    """river's RsQuantile and VectorDict."""
    from river._river_rust.stats import RsQuantile
    from river._river_rust.vectordict import VectorDict

    return RsQuantile, VectorDict


def _check_rs_quantile_layout() -> None:
    """river's RsQuantile state is the 170 bytes `_RS_QUANTILE` reads (q first)."""
    rs_quantile, _ = _rust_types()
    probe = rs_quantile(0.25)
    state = probe.__getstate__()
    if len(state) != _RS_QUANTILE.size or _RS_QUANTILE.unpack(state)[0] != 0.25:
        raise UnsupportedState("river's RsQuantile no longer packs its state as this "
                               "codec reads it (21 floats, a count, a flag)")


# -- encoding -----------------------------------------------------------------------------


class _Refused(Exception):
    """An object the encoder cannot write (its path is found afterwards)."""

    def __init__(self, obj: object, reason: str) -> None:
        super().__init__(reason)
        self.obj = obj
        self.reason = reason



class _Unset:
    """A slot without a value."""

    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Any = _Unset()


class _Encoder:
    """One document's worth of state: class entries, labels, and what was met."""

    def __init__(self) -> None:
        # id -> (object, its node): the object is kept so that its id is not reused
        # while the document is written. Mutable containers and objects are remembered
        # before what they hold (a cycle back to one is a reference to it); tuples and
        # frozensets, values, once written (met again later, they are a reference; a
        # cycle back to one inside it writes it again there, equal)
        self.memo: dict[int, tuple[Any, Any]] = {}
        self.labelled: dict[int, int] = {}  # id -> label, for objects met twice
        self.entries: dict[tuple[type[Any], tuple[str, ...]], int] = {}
        self.classes: list[list[Any]] = []
        rs_quantile, vector_dict = _rust_types()
        self.by_type: dict[type[Any], Callable[[Any], Any]] = {
            list: self.list_node, dict: self.dict_node, tuple: self.tuple_node,
            set: self.set_node, frozenset: self.frozenset_node, bytes: self.bytes_node,
            datetime: self.datetime_node, timedelta: self.timedelta_node,
            collections.OrderedDict: self.ordered_node, collections.Counter: self.counter_node,
            collections.defaultdict: self.defaultdict_node, collections.deque: self.deque_node,
            itertools.count: self.count_node, rs_quantile: self.rs_quantile_node,
            vector_dict: self.vector_dict_node, _Unset: lambda _: {"u": 0},
        }

    def document(self, root: object) -> dict[str, Any]:
        """The document of `root`."""
        node = self.node(root)
        return {"sia-state": FORMAT, "classes": self.classes, "root": node}

    def node(self, obj: Any) -> Any:
        """The JSON node of a value."""
        kind = type(obj)
        if kind is str or kind is int or kind is bool or obj is None:
            return obj
        if kind is float:
            return obj if obj - obj == 0.0 else {"f": repr(obj)}
        seen = self.memo.get(id(obj))
        if seen is not None:
            return self.reference(id(obj), seen[1])
        make = self.by_type.get(kind)
        if make is not None:
            return make(obj)
        layout = _LAYOUTS.get(kind)
        if layout is None:
            raise _Refused(obj, "not a type learned state may hold")
        return self.object_node(obj, layout)

    def items(self, values: Any) -> list[Any]:
        """Nodes of a sequence's values (finite floats, ints and strs as they are)."""
        node = self.node
        return [v if ((t := type(v)) is float and v - v == 0.0) or t is int or t is str
                else node(v) for v in values]

    def pairs(self, mapping: Any) -> list[Any]:
        """Nodes of a mapping's keys and values, flattened: [k, v, k, v, ...]."""
        node = self.node
        return [v if ((t := type(v)) is float and v - v == 0.0) or t is int or t is str
                else node(v) for pair in mapping.items() for v in pair]

    def open(self, obj: object, tag: str) -> dict[str, Any]:
        """The tagged node of a mutable container, remembered before what it holds is
        written (a cycle through it is a reference)."""
        node: dict[str, Any] = {tag: None}
        self.memo[id(obj)] = (obj, node)
        return node

    def reference(self, key: int, node: Any) -> dict[str, int]:
        """A reference to an object met before; labels its first node if not yet."""
        label = self.labelled.get(key)
        if label is None:
            label = self.labelled[key] = len(self.labelled)
            if type(node) is list:
                node.insert(0, {"=": label})
            else:
                node["="] = label
        return {"r": label}

    def list_node(self, obj: list[Any]) -> list[Any]:
        node: list[Any] = []
        self.memo[id(obj)] = (obj, node)
        node += self.items(obj)
        return node

    def dict_node(self, obj: dict[Any, Any]) -> dict[str, Any]:
        if set(map(type, obj)) <= _STR:
            node = self.open(obj, "d")
            encode = self.node
            node["d"] = {k: v if ((t := type(v)) is float and v - v == 0.0) or t is int
                         or t is str else encode(v) for k, v in obj.items()}
            return node
        node = self.open(obj, "m")
        node["m"] = self.pairs(obj)
        return node

    def tuple_node(self, obj: tuple[Any, ...]) -> dict[str, Any]:
        node = {"t": self.items(obj)}
        self.memo[id(obj)] = (obj, node)
        return node

    def frozenset_node(self, obj: frozenset[Any]) -> dict[str, Any]:
        node = {"fs": self.items(obj)}
        self.memo[id(obj)] = (obj, node)
        return node

    def set_node(self, obj: set[Any]) -> dict[str, Any]:
        node = self.open(obj, "s")
        node["s"] = self.items(obj)
        return node

    def ordered_node(self, obj: collections.OrderedDict[Any, Any]) -> dict[str, Any]:
        node = self.open(obj, "od")
        node["od"] = self.pairs(obj)
        return node

    def counter_node(self, obj: collections.Counter[Any]) -> dict[str, Any]:
        node = self.open(obj, "c")
        node["c"] = self.pairs(obj)
        return node

    def defaultdict_node(self, obj: collections.defaultdict[Any, Any]) -> dict[str, Any]:
        factory = obj.default_factory
        named = next((n for n, f in _FACTORIES.items() if f is factory), None)
        if factory is not None and named is None:
            raise _Refused(obj, f"a defaultdict whose default_factory is {factory!r} "
                                f"(allowed: {', '.join(_FACTORIES)} or None)")
        node = self.open(obj, "dd")
        node["dd"] = [named, *self.pairs(obj)]
        return node

    def deque_node(self, obj: collections.deque[Any]) -> dict[str, Any]:
        node = self.open(obj, "q")
        node["q"] = [obj.maxlen, *self.items(obj)]
        return node

    def bytes_node(self, obj: bytes) -> dict[str, str]:
        return {"b": base64.b64encode(obj).decode("ascii")}

    def datetime_node(self, obj: datetime) -> dict[str, Any]:
        zone = obj.tzinfo
        if zone is None:
            tag = "dn"
        elif type(zone) is TzInfo:
            tag = "dt"
        elif type(zone) is timezone and zone.tzname(None) == timezone(
                zone.utcoffset(None)).tzname(None):
            tag = "dz"
        else:
            raise _Refused(obj, f"a datetime in zone {zone!r} (only fixed UTC offsets "
                                "without a name, or naive)")
        text = obj.isoformat()
        return {tag: [text, 1] if obj.fold else text}

    def timedelta_node(self, obj: timedelta) -> dict[str, list[int]]:
        return {"td": [obj.days, obj.seconds, obj.microseconds]}

    def count_node(self, obj: itertools.count[Any]) -> dict[str, Any]:
        found = re.fullmatch(r"count\((-?\d+)(?:, (-?\d+))?\)", repr(obj))
        if found is None:
            raise _Refused(obj, f"an itertools.count that is not of integers ({obj!r})")
        node = self.open(obj, "n")
        node["n"] = [int(found[1]), int(found[2] or 1)]
        return node

    def rs_quantile_node(self, obj: Any) -> dict[str, Any]:
        _check_rs_quantile_layout()
        state = obj.__getstate__()
        if len(state) != _RS_QUANTILE.size:
            raise _Refused(obj, f"an RsQuantile whose state is {len(state)} bytes")
        *floats, count, ordered = _RS_QUANTILE.unpack(state)
        node = self.open(obj, "rq")
        node["rq"] = [*self.items(floats), count, ordered]
        return node

    def vector_dict_node(self, obj: Any) -> dict[str, Any]:
        _, (data, factory, mask, *_) = obj.__reduce__()
        if factory is not None or mask is not None:
            raise _Refused(obj, "a VectorDict with a mask or a default factory")
        node = self.open(obj, "vd")
        node["vd"] = self.dict_node(dict(data))
        return node

    def object_node(self, obj: Any, layout: _Layout) -> dict[str, Any]:
        """An object of an allowed class: its class entry, then its fields' values."""
        payload: list[Any] = [0]
        node: dict[str, Any] = {"o": payload}
        if layout.is_tuple:
            names: tuple[str, ...] = obj._fields
            payload += self.items(obj)
            self.memo[id(obj)] = (obj, node)
        else:
            self.memo[id(obj)] = (obj, node)
            names = tuple(layout.slots)
            if layout.model:
                if obj.__pydantic_extra__ or obj.__pydantic_private__:
                    raise _Refused(obj, "a pydantic model with extra or private attributes")
                payload.append(sorted(obj.__pydantic_fields_set__))
            if layout.is_list:
                payload.append(self.items(list.__iter__(obj)))
            payload += self.items(self.slot_values(obj, layout))
            if layout.model:  # its fields (not cached properties: computed again)
                attributes = obj.__dict__
                fields = layout.cls.model_fields
                names = tuple(k for k in attributes if k in fields)
                payload += self.items(attributes[k] for k in names)
            elif layout.has_dict:
                attributes = obj.__dict__
                names += tuple(attributes)
                payload += self.items(attributes.values())
        key = (layout.cls, names)
        entry = self.entries.get(key)
        if entry is None:
            entry = self.entries[key] = len(self.classes)
            self.classes.append([layout.name, list(names)])
        payload[0] = entry
        return node

    @staticmethod
    def slot_values(obj: Any, layout: _Layout) -> tuple[Any, ...]:
        """The values of an object's slots, `_UNSET` for those without one."""
        if layout.read_slots is not None:
            try:
                return layout.read_slots(obj)
            except AttributeError:
                pass
        values: list[Any] = []
        for slot in layout.slots.values():
            try:
                values.append(slot.__get__(obj, layout.cls))
            except AttributeError:
                values.append(_UNSET)
        return tuple(values)


_STR = frozenset({str})


def dumps(state: object) -> bytes:
    """The JSON document of `state` (not compressed). Raises `UnsupportedState` naming
    the type and the path of a value the codec does not allow."""
    _load_allowlist()
    encoder = _Encoder()
    try:
        document = encoder.document(state)
    except _Refused as refused:
        where = _path_to(state, refused.obj) or "somewhere in the state"
        raise UnsupportedState(
            f"cannot save {_type_name(refused.obj)} at {where}: {refused.reason}; "
            "learned state may hold builtin values, datetimes and the classes of "
            "sia.engine.state_codec's allowlist (a plug-in allows its own with "
            "state_codec.allow)") from None
    except RecursionError:
        raise UnsupportedState("cannot save state that nests too deeply") from None
    return json.dumps(document, separators=(",", ":"), allow_nan=False).encode("ascii")


def _type_name(obj: object) -> str:
    kind = type(obj)
    return kind.__qualname__ if kind.__module__ == "builtins" else class_name(kind)


def _path_to(root: object, target: object) -> str | None:
    """Where `target` is in `root`, as Python-like access ("state['a'].b[3]")."""
    seen: set[int] = set()
    stack: list[tuple[object, str]] = [(root, "state")]
    while stack:
        obj, path = stack.pop()
        if obj is target:
            return path
        if id(obj) in seen or type(obj) in (str, int, float, bool, bytes) or obj is None:
            continue
        seen.add(id(obj))
        stack.extend(reversed(list(_children(obj, path))))
    return None


def _children(obj: object, path: str) -> Iterator[tuple[object, str]]:
    """The values inside `obj`, each with its path."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield key, f"{path} (a key)"
            yield value, f"{path}[{key!r}]"
    elif isinstance(obj, list | tuple | set | frozenset | collections.deque):
        for i, value in enumerate(obj):
            yield value, f"{path}[{i}]"
    else:
        layout = _LAYOUTS.get(type(obj))
        for name in layout.slots if layout else ():
            if hasattr(obj, name):
                yield getattr(obj, name), f"{path}.{name}"
        for name, value in getattr(obj, "__dict__", {}).items():
            yield value, f"{path}.{name}"


# -- decoding -----------------------------------------------------------------------------


def _refuse_constant(name: str) -> Any:
    raise StateDecodeError(f"{name} is not a JSON value (non-finite floats are tagged)")


def loads(data: bytes) -> Any:
    """The state of a JSON document written by `dumps`. Only allowed classes are built,
    none of their code runs; anything else raises `StateDecodeError`."""
    _load_allowlist()
    if data[:1] == b"\x80":
        raise StateDecodeError("state document is a pickle, which SIA never loads (it "
                               "could run code)")
    try:
        document = json.loads(data, parse_constant=_refuse_constant)
    except RecursionError:
        raise StateDecodeError("state document nests too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        if isinstance(exc, StateDecodeError):
            raise
        raise StateDecodeError(f"state document is not valid JSON: {exc}") from None
    if not isinstance(document, dict) or set(document) != {"sia-state", "classes", "root"}:
        raise StateDecodeError("not a SIA state document (expected sia-state, classes, root)")
    if document["sia-state"] != FORMAT:
        raise StateDecodeError(f"state document format {document['sia-state']!r}; this "
                               f"SIA reads format {FORMAT}")
    decoder = _Decoder(document["classes"])
    try:
        return decoder.value(document["root"])
    except StateDecodeError:
        raise
    except RecursionError:
        raise StateDecodeError("state document nests too deeply") from None
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError,
            struct.error) as exc:
        raise StateDecodeError(f"state document is malformed: {type(exc).__name__}: "
                               f"{exc}") from None


def decompress(payload: bytes, *, limit: int = MAX_DECODED) -> bytes:
    """A zlib or gzip payload, expanded to at most `limit` bytes."""
    inflater = zlib.decompressobj(wbits=47)  # 32 + 15: a zlib or a gzip header
    try:
        data = inflater.decompress(payload, limit)
    except zlib.error as exc:
        raise StateDecodeError(f"state payload is not compressed data: {exc}") from None
    if inflater.unconsumed_tail:
        raise StateDecodeError(f"state payload expands past {limit:,} bytes")
    if not inflater.eof:
        raise StateDecodeError("state payload is truncated")
    return data


_NESTED = (list, dict)


@dataclass(frozen=True)
class _Entry:
    """A class entry of a document: a layout, and how each field of it is set."""

    layout: _Layout
    names: tuple[str, ...]
    setters: tuple[Any, ...]  # a slot's setter per field, or None for an attribute


class _Decoder:
    """One document's objects, by label."""

    def __init__(self, classes: Any) -> None:
        self.labels: dict[int, Any] = {}
        self.entries = [self.entry(c) for c in _expect(classes, list, "classes")]
        self.by_tag: dict[str, Callable[[Any, int | None], Any]] = {
            "t": self.tuple_of, "s": self.set_of, "fs": self.frozenset_of, "d": self.dict_of,
            "m": self.mapping_of, "od": self.ordered_of, "c": self.counter_of,
            "dd": self.defaultdict_of, "q": self.deque_of, "b": self.bytes_of,
            "f": self.float_of, "td": self.timedelta_of, "dt": self.pydantic_datetime_of,
            "dz": self.zoned_datetime_of, "dn": self.naive_datetime_of, "n": self.count_of,
            "o": self.object_of, "rq": self.rs_quantile_of, "vd": self.vector_dict_of,
            "r": self.reference_to,
        }

    @staticmethod
    def entry(raw: Any) -> _Entry:
        """A class entry, checked against the allowlist and the class's fields."""
        if not (type(raw) is list and len(raw) == 2 and type(raw[0]) is str
                and type(raw[1]) is list):
            raise StateDecodeError(f"bad class entry {str(raw)[:100]!r}")
        name, names = raw
        layout = _ALLOWED.get(_RENAMED.get(name) or name)  # a moved class by its old name
        if layout is None:
            raise StateDecodeError(
                f"state names class {name[:100]!r}, which is not allowed in SIA state: it "
                "may hold only SIA's state classes and river's listed models (decoding "
                "never runs code from the data)")
        if not all(type(field) is str for field in names) or len(set(names)) < len(names):
            raise StateDecodeError(f"{name}: bad field names")
        if layout.is_tuple or layout.model:
            expected = layout.cls._fields if layout.is_tuple else tuple(layout.cls.model_fields)
            if sorted(names) != sorted(expected) or (layout.is_tuple and
                                                     tuple(names) != expected):
                raise StateDecodeError(f"{name}: fields {names[:20]} are not its "
                                       f"{list(expected)}")
            return _Entry(layout, tuple(names), ())
        setters: list[Any] = []
        for field in names:
            slot = layout.slots.get(field)
            if slot is None and not (layout.has_dict and field.isidentifier()
                                     and not field.startswith("__")):
                raise StateDecodeError(f"{name} has no field {field[:60]!r}")
            if slot is None and _shadows_behaviour(layout.cls, field):
                raise StateDecodeError(f"{name}: field {field!r} would hide its method")
            setters.append(None if slot is None else slot.__set__)
        return _Entry(layout, tuple(names), tuple(setters))

    def value(self, node: Any) -> Any:
        """The value of a node."""
        kind = type(node)
        if kind is list:
            return self.list_of(node)
        if kind is dict:
            return self.tagged(node)
        return node

    def values(self, nodes: Any) -> list[Any]:
        """The values of a JSON array of nodes (no label)."""
        value = self.value
        return [value(n) if type(n) in _NESTED else n
                for n in _expect(nodes, list, "an array")]

    def list_of(self, node: list[Any]) -> list[Any]:
        out: list[Any] = []
        if node and type(node[0]) is dict and len(node[0]) == 1 and "=" in node[0]:
            self.define(node[0]["="], out)  # a label ({"=": n}, alone: not a tagged value)
            node = node[1:]
        out += self.values(node)
        return out

    def tagged(self, node: dict[str, Any]) -> Any:
        label = None
        if len(node) != 1:
            label = node.pop("=", None)
            if len(node) != 1 or label is None:
                raise StateDecodeError(f"a tagged value with keys {sorted(node)[:5]}")
        for tag, payload in node.items():
            decode = self.by_tag.get(tag)
            if decode is None:
                raise StateDecodeError(f"unknown tag {tag[:40]!r}")
            return decode(payload, label)
        raise StateDecodeError("an empty tagged value")

    def define(self, label: Any, obj: T) -> T:
        """Label `obj` for the references that follow."""
        if type(label) is not int or label in self.labels:
            raise StateDecodeError(f"bad or repeated label {str(label)[:20]!r}")
        self.labels[label] = obj
        return obj

    def labelled(self, label: int | None, obj: T) -> T:
        return obj if label is None else self.define(label, obj)

    def reference_to(self, payload: Any, label: int | None) -> Any:
        if label is not None or type(payload) is not int or payload not in self.labels:
            raise StateDecodeError(f"reference to {str(payload)[:20]!r} before its object")
        return self.labels[payload]

    def tuple_of(self, payload: Any, label: int | None) -> tuple[Any, ...]:
        return self.labelled(label, tuple(self.values(payload)))

    def frozenset_of(self, payload: Any, label: int | None) -> frozenset[Any]:
        return self.labelled(label, frozenset(self.values(payload)))

    def set_of(self, payload: Any, label: int | None) -> set[Any]:
        out: set[Any] = self.labelled(label, set())
        out.update(self.values(payload))
        return out

    def dict_of(self, payload: Any, label: int | None) -> dict[str, Any]:
        out: dict[str, Any] = self.labelled(label, {})
        value = self.value
        for key, node in _expect(payload, dict, "a dict").items():
            out[key] = value(node) if type(node) in _NESTED else node
        return out

    def pairs(self, nodes: Any) -> Iterator[tuple[Any, Any]]:
        """The (key, value) pairs of a flattened [k, v, k, v, ...] array."""
        flat = self.values(nodes)
        if len(flat) % 2:
            raise StateDecodeError("a mapping with a key and no value")
        keys = iter(flat)
        return zip(keys, keys, strict=True)

    def mapping_of(self, payload: Any, label: int | None) -> dict[Any, Any]:
        out: dict[Any, Any] = self.labelled(label, {})
        out.update(self.pairs(payload))
        return out

    def ordered_of(self, payload: Any, label: int | None) -> Any:
        out: collections.OrderedDict[Any, Any] = self.labelled(label, collections.OrderedDict())
        out.update(self.pairs(payload))
        return out

    def counter_of(self, payload: Any, label: int | None) -> Any:
        out: collections.Counter[Any] = self.labelled(label, collections.Counter())
        dict.update(out, self.pairs(payload))  # Counter.update would add to the counts
        return out

    def defaultdict_of(self, payload: Any, label: int | None) -> Any:
        factory_name, *pairs = _expect(payload, list, "a defaultdict") or [None]
        if factory_name is not None and factory_name not in _FACTORIES:
            raise StateDecodeError(f"defaultdict factory {str(factory_name)[:40]!r} is not "
                                   f"allowed (only {', '.join(_FACTORIES)} or null)")
        factory = None if factory_name is None else _FACTORIES[factory_name]
        out: collections.defaultdict[Any, Any] = self.labelled(
            label, collections.defaultdict(factory))
        out.update(self.pairs(pairs))
        return out

    def deque_of(self, payload: Any, label: int | None) -> Any:
        maxlen, *items = _expect(payload, list, "a deque") or [None]
        if maxlen is not None and (type(maxlen) is not int or maxlen < 0):
            raise StateDecodeError(f"deque maxlen {str(maxlen)[:20]!r}")
        out: collections.deque[Any] = self.labelled(label, collections.deque(maxlen=maxlen))
        out.extend(self.values(items))
        return out

    def bytes_of(self, payload: Any, label: int | None) -> bytes:
        data = base64.b64decode(_expect(payload, str, "base64"), validate=True)
        return self.labelled(label, data)

    def float_of(self, payload: Any, label: int | None) -> float:
        if payload not in ("nan", "inf", "-inf"):
            raise StateDecodeError(f"float tag {str(payload)[:20]!r}")
        return float(payload)

    def timedelta_of(self, payload: Any, label: int | None) -> timedelta:
        days, seconds, microseconds = _expect(payload, list, "a timedelta")
        if not all(type(v) is int for v in (days, seconds, microseconds)):
            raise StateDecodeError("a timedelta of non-integers")
        return timedelta(days=days, seconds=seconds, microseconds=microseconds)

    def datetime_of(self, payload: Any, *, aware: bool) -> datetime:
        """A datetime from its ISO text (and fold), aware or naive as its tag says."""
        text, fold = (payload, 0) if type(payload) is str else _expect(payload, list, "[iso, 1]")
        if type(text) is not str or fold not in (0, 1):
            raise StateDecodeError(f"bad datetime {str(payload)[:60]!r}")
        at = datetime.fromisoformat(text)
        if (at.tzinfo is not None) != aware:
            raise StateDecodeError(f"datetime {text[:40]!r} is {'naive' if aware else 'aware'}")
        return at.replace(fold=1) if fold else at

    def pydantic_datetime_of(self, payload: Any, label: int | None) -> datetime:
        at = self.datetime_of(payload, aware=True)
        offset = at.utcoffset()
        seconds = 0 if offset is None else int(offset.total_seconds())
        return at.replace(tzinfo=_tz_info(seconds))

    def zoned_datetime_of(self, payload: Any, label: int | None) -> datetime:
        return self.datetime_of(payload, aware=True)

    def naive_datetime_of(self, payload: Any, label: int | None) -> datetime:
        return self.datetime_of(payload, aware=False)

    def count_of(self, payload: Any, label: int | None) -> itertools.count[int]:
        start, step = _expect(payload, list, "a count")
        if type(start) is not int or type(step) is not int:
            raise StateDecodeError("an itertools.count of non-integers")
        return self.labelled(label, itertools.count(start, step))

    def rs_quantile_of(self, payload: Any, label: int | None) -> Any:
        return self.labelled(label, _decode_rs_quantile(self.values(payload)))

    def vector_dict_of(self, payload: Any, label: int | None) -> Any:
        if type(payload) is not dict or ("d" not in payload and "m" not in payload):
            raise StateDecodeError("a VectorDict of something other than a dict")
        data = self.tagged(payload)
        _, vector_dict = _rust_types()
        return self.labelled(label, vector_dict(data))

    def object_of(self, payload: Any, label: int | None) -> Any:
        """An object of an allowed class, its fields set without running its code."""
        index = _expect(payload, list, "an object")[0] if payload else None
        if type(index) is not int or not 0 <= index < len(self.entries):
            raise StateDecodeError(f"an object of class entry {str(index)[:20]}, not in "
                                   "the table")
        entry = self.entries[index]
        layout = entry.layout
        if layout.is_tuple:
            values = self.values(payload[1:])
            if len(values) != len(entry.names):
                raise StateDecodeError(f"{layout.name}: {len(values)} values for "
                                       f"{len(entry.names)} fields")
            return self.labelled(label, tuple.__new__(layout.cls, values))
        if layout.model:
            return self.model_of(entry, payload[1:], label)
        obj = self.labelled(label, (list.__new__ if layout.is_list else object.__new__)(
            layout.cls))
        nodes = payload[1:]
        if layout.is_list:
            if not nodes:
                raise StateDecodeError(f"{layout.name}: no items")
            list.extend(obj, self.values(nodes[0]))
            nodes = nodes[1:]
        if len(nodes) != len(entry.names):
            raise StateDecodeError(f"{layout.name}: {len(nodes)} values for "
                                   f"{len(entry.names)} fields")
        attributes: dict[str, Any] = {}
        tagged, list_of = self.tagged, self.list_of
        for name, setter, node in zip(entry.names, entry.setters, nodes, strict=True):
            kind = type(node)
            if kind is dict:
                if "u" in node:  # an unset slot
                    if node != {"u": 0} or setter is None:
                        raise StateDecodeError(f"{layout.name}.{name}: bad unset value")
                    continue
                field = tagged(node)
            else:
                field = list_of(node) if kind is list else node
            if setter is None:
                attributes[name] = field
            else:
                setter(obj, field)
        if layout.has_dict:
            object.__setattr__(obj, "__dict__", attributes)
        return obj

    def model_of(self, entry: _Entry, nodes: list[Any], label: int | None) -> Any:
        """A pydantic model: its fields' values and which were set, without validation
        (as pydantic's own copy does)."""
        obj = self.labelled(label, object.__new__(entry.layout.cls))
        if not nodes or type(nodes[0]) is not list:
            raise StateDecodeError(f"{entry.layout.name}: no set of fields")
        fields_set, *fields = nodes
        names = entry.names
        if not set(fields_set) <= set(names) or len(fields) != len(names):
            raise StateDecodeError(f"{entry.layout.name}: bad fields")
        object.__setattr__(obj, "__dict__", dict(zip(names, self.values(fields), strict=True)))
        object.__setattr__(obj, "__pydantic_fields_set__", set(fields_set))
        object.__setattr__(obj, "__pydantic_extra__", None)
        object.__setattr__(obj, "__pydantic_private__", None)
        return obj


def _shadows_behaviour(cls: type[Any], name: str) -> bool:
    """An instance attribute `name` would hide a method, property or other descriptor
    of `cls` (a cached property excepted: its value is what the attribute holds)."""
    found = inspect.getattr_static(cls, name, None)
    if found is None or isinstance(found, functools.cached_property):
        return False
    return callable(found) or hasattr(type(found), "__get__")


def _decode_rs_quantile(values: list[Any]) -> Any:
    """river's RsQuantile from its P² state: q, 4 x 5 marker floats, n_heights, sorted.

    Safe because the bytes handed to its `__setstate__` are packed here, not read from
    the document: exactly the 170-byte bincode layout of a Rust struct of 21 f64, a u8
    and a bool (river's Quantile<f64>: no pointer, no length, no heap), so
    deserialising cannot fail, allocate or reach anything but those numbers. n_heights
    is checked to 0..5 and q to [0, 1], the ranges its update and get index with (a
    larger n_heights would make Rust panic, not run code, but is refused all the same)."""
    if len(values) != 23:
        raise StateDecodeError(f"an RsQuantile of {len(values)} values, not 23")
    *floats, count, ordered = values
    if not all(type(v) is float for v in floats):
        raise StateDecodeError("an RsQuantile with a value that is not a float")
    if type(count) is not int or not 0 <= count <= 5 or type(ordered) is not bool:
        raise StateDecodeError(f"an RsQuantile with {count!r} heights, sorted {ordered!r}")
    if not (math.isfinite(floats[0]) and 0.0 <= floats[0] <= 1.0):
        raise StateDecodeError(f"an RsQuantile of q {floats[0]!r}")
    rs_quantile, _ = _rust_types()
    _check_rs_quantile_layout()
    restored = rs_quantile.__new__(rs_quantile)
    restored.__setstate__(_RS_QUANTILE.pack(*floats, count, ordered))
    return restored


_TZ_INFOS: dict[int, TzInfo] = {}


def _tz_info(seconds: int) -> TzInfo:
    """pydantic's fixed-offset zone (shared per offset)."""
    zone = _TZ_INFOS.get(seconds)
    if zone is None:
        zone = _TZ_INFOS[seconds] = TzInfo(seconds)
    return zone


def _expect(value: Any, kind: type[T], what: str) -> T:
    """`value`, if it is a `kind` (else a StateDecodeError about `what`)."""
    if type(value) is not kind:
        raise StateDecodeError(f"expected {what}, found {type(value).__name__}")
    return value
