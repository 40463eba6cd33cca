"""Hypothesis strategies for JSON values that follow a JSON Schema, for the subset of
JSON Schema that `sia.events.models.event_json_schema()` uses.

(hypothesis-jsonschema would do this, but its latest release, 0.23.1, calls a Hypothesis
internal that Hypothesis 6.170 no longer has: `many.more()`.) A keyword this module does
not know fails loudly, so a contract that grows one is not half generated.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

# keywords that only describe (no constraint to generate)
_NOTES = {"title", "description", "default", "$schema", "discriminator"}
_KNOWN = _NOTES | {"$ref", "$defs", "oneOf", "anyOf", "const", "enum", "type", "properties",
                   "required", "additionalProperties", "patternProperties", "propertyNames",
                   "maxProperties", "items", "minItems", "maxItems", "minLength", "maxLength",
                   "pattern", "format", "minimum", "maximum", "exclusiveMinimum"}
_ZONES = st.integers(-14 * 60, 14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes)))


def from_schema(schema: dict[str, Any], *, definition: str | None = None,
                max_items: int = 4) -> st.SearchStrategy[Any]:
    """Values valid against `schema`, or against one of its `$defs` (arrays and maps of
    at most `max_items`)."""
    builder = _Builder(schema, max_items)
    return builder.build(schema if definition is None else builder.defs[definition])


class _Builder:
    def __init__(self, root: dict[str, Any], max_items: int) -> None:
        self.defs = root.get("$defs", {})
        self.max_items = max_items

    def build(self, node: dict[str, Any]) -> st.SearchStrategy[Any]:
        unknown = set(node) - _KNOWN
        if unknown:
            raise ValueError(f"JSON Schema keywords not generated: {sorted(unknown)}")
        if "$ref" in node:
            return self.build(self.defs[node["$ref"].removeprefix("#/$defs/")])
        for combined in ("oneOf", "anyOf"):
            if combined in node:
                return st.one_of([self.build(choice) for choice in node[combined]])
        if "const" in node:
            return st.just(node["const"])
        if "enum" in node:
            return st.sampled_from(node["enum"])
        kind = node.get("type")
        if kind == "object":
            return self._object(node)
        if kind == "array":
            return st.lists(self.build(node["items"]), min_size=node.get("minItems", 0),
                            max_size=min(node.get("maxItems", self.max_items), self.max_items))
        if kind == "string":
            return self._string(node)
        if kind == "number":
            low = node.get("minimum", node.get("exclusiveMinimum"))
            return st.floats(min_value=low, max_value=node.get("maximum"),
                             exclude_min="exclusiveMinimum" in node, allow_nan=False,
                             allow_infinity=False)
        if kind == "integer":
            return st.integers(node.get("minimum"), node.get("maximum"))
        if kind == "boolean":
            return st.booleans()
        if kind == "null":
            return st.none()
        raise ValueError(f"JSON Schema type not generated: {kind!r}")

    def _string(self, node: dict[str, Any]) -> st.SearchStrategy[str]:
        low, high = node.get("minLength", 0), node.get("maxLength", math.inf)
        if node.get("format") == "date-time":
            # a pattern on a date-time is the contract's range of years: draw from it
            pattern = re.compile(node.get("pattern", ""))
            low_year, high_year = (1970, 2200) if "pattern" in node else (1, 9999)
            return st.builds(lambda when, zone: when.replace(tzinfo=zone).isoformat(),
                             st.datetimes(min_value=datetime(low_year, 1, 2),
                                          max_value=datetime(high_year, 12, 30)), _ZONES
                             ).filter(lambda text: pattern.search(text) is not None)
        if "pattern" in node:
            text = st.from_regex(node["pattern"], fullmatch=True)
        else:
            text = st.text(max_size=min(high, 20))
        return text.filter(lambda s: low <= len(s) <= high)

    def _object(self, node: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
        if "properties" in node:
            properties = node["properties"]
            required = set(node.get("required", ()))
            assert node.get("additionalProperties") is False, "open objects not generated"
            return st.fixed_dictionaries(
                {name: self.build(s) for name, s in properties.items() if name in required},
                optional={name: self.build(s) for name, s in properties.items()
                          if name not in required})
        if "patternProperties" not in node:  # any object: scalars under short names
            return st.dictionaries(st.text(max_size=8), st.none() | st.booleans()
                                   | st.integers() | st.floats(allow_nan=False) | st.text(),
                                   max_size=self.max_items)
        (pattern, values), = node["patternProperties"].items()
        names = node.get("propertyNames", {})
        keys = st.from_regex(pattern, fullmatch=True).filter(
            lambda k: len(k) <= names.get("maxLength", math.inf))
        return st.dictionaries(keys, self.build(values),
                               max_size=min(node.get("maxProperties", self.max_items),
                                            self.max_items))
