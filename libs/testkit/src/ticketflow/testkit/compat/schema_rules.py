"""The rules a change to a boundary type must keep: today's schemas against the snapshots.

``compare(old, new)`` lists every breaking change as a ``Problem`` that names the type, the field,
what kind of change it is and what to do instead (``FIXES``); ``format_problems`` words them for a
failing test or ``scripts/update_schemas.py``. What counts as breaking and what as compatible is
listed in ``schemas``' docstring and in docs/compatibility.md.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Any

from .schemas import _DOC_KEYS, Schemas

__all__ = ["FIXES", "Problem", "compare", "format_problems"]

FIXES = {
    "new required field": "give it a default (`name: T = value`, or `name: T | None = None`): "
    "payloads written before it existed do not have it",
    "removed or renamed field": "keep the field (stop reading it, say so in its description); to "
    "rename, add the new name with a default next to the old one",
    "changed type": "keep the type; widening is fine (T -> T | None, int -> float); otherwise add "
    "a new field of the new type, with a default",
    "default removed": "keep the default: every stored payload without the field would stop "
    "decoding",
    "changed default": "keep the default (it is how payloads written without the field read); "
    "set the new value explicitly where the payload is built (e.g. from Settings)",
    "narrowed constraint": "keep or loosen the constraint: stored payloads were valid under the "
    "old one",
    "enum value removed": "keep the value (stored payloads and search attributes hold it); stop "
    "producing it instead",
    "type removed": "keep the type (and its name): stored histories hold its payloads; to replace "
    "it, add the new type next to it",
    "unknown fields forbidden": "keep extra='ignore': an older worker must read a newer payload",
}


@dataclass(frozen=True, order=True)
class Problem:
    """One breaking change: in ``model``, at ``field`` (None: the type itself)."""

    model: str
    field: str | None
    kind: str
    detail: str

    @property
    def where(self) -> str:
        return f"{self.model}.{self.field}" if self.field else self.model

    def __str__(self) -> str:
        return f"{self.where}: {self.kind}: {self.detail}\n    do instead: {FIXES[self.kind]}"


# ---- snapshots from models -------------------------------------------------------------------


def compare(old: Schemas, new: Schemas) -> list[Problem]:
    """Every breaking change from the snapshots ``old`` to the schemas ``new``."""
    problems: list[Problem] = []
    for name in sorted(old):
        if name not in new:
            problems.append(
                Problem(name, None, "type removed", "it has a snapshot but no current type")
            )
            continue
        problems.extend(_Comparison(old, new).type_(name, old[name], new[name]))
    return sorted(set(problems))


class _Comparison:
    def __init__(self, old: Schemas, new: Schemas) -> None:
        self.old, self.new = old, new
        self.seen: set[tuple[str, str]] = set()

    def type_(self, name: str, o: dict[str, Any], n: dict[str, Any]) -> list[Problem]:
        if "enum" in o:
            removed = [v for v in o["enum"] if v not in n.get("enum", [])]
            if "enum" not in n:
                return [Problem(name, None, "changed type", "no longer an enum")]
            return [
                Problem(name, None, "enum value removed", f"{v!r} is gone from {name}")
                for v in removed
            ]
        return self.object_(name, o, n)

    def object_(self, name: str, o: dict[str, Any], n: dict[str, Any]) -> list[Problem]:
        out: list[Problem] = []
        if "properties" not in n:
            return [Problem(name, None, "changed type", "no longer an object with fields")]
        o_props: dict[str, Any] = o.get("properties", {})
        n_props: dict[str, Any] = n.get("properties", {})
        o_req, n_req = set(o.get("required", [])), set(n.get("required", []))
        added = sorted(n_props.keys() - o_props.keys())
        for field in sorted(o_props.keys() - n_props.keys()):
            hint = f" (renamed to {' or '.join(added)}?)" if added else ""
            out.append(
                Problem(
                    name,
                    field,
                    "removed or renamed field",
                    f"`{field}` is gone{hint}; stored payloads still carry it and older "
                    "readers still need it",
                )
            )
        for field in added:
            if field in n_req:
                out.append(
                    Problem(
                        name,
                        field,
                        "new required field",
                        f"`{field}` has no default: payloads written before it do not decode",
                    )
                )
        for field in sorted(o_props.keys() & n_props.keys()):
            op, np_ = o_props[field], n_props[field]
            if field in n_req and field not in o_req:
                was = f" (was {op['default']!r})" if "default" in op else ""
                out.append(
                    Problem(name, field, "default removed", f"`{field}` is now required{was}")
                )
            elif "default" in op and "default" in np_ and op["default"] != np_["default"]:
                out.append(
                    Problem(
                        name,
                        field,
                        "changed default",
                        f"{op['default']!r} -> {np_['default']!r}",
                    )
                )
            out.extend(Problem(name, field, kind, detail) for kind, detail in self.value(op, np_))
        if n.get("additionalProperties") is False and o.get("additionalProperties") is not False:
            out.append(
                Problem(name, None, "unknown fields forbidden", "model_config extra='forbid'")
            )
        return out

    # A value schema: is everything the old one accepted still accepted by the new one?
    def value(self, o: dict[str, Any], n: dict[str, Any]) -> list[tuple[str, str]]:
        o_vars, n_vars = _variants(o), _variants(n)
        out: list[tuple[str, str]] = []
        for ov in o_vars:
            best: list[tuple[str, str]] | None = None
            for nv in n_vars:
                issues = self.covers(ov, nv)
                if issues == []:
                    best = []
                    break
                if issues is not None and (best is None or len(issues) < len(best)):
                    best = issues
            if best is None:
                out.append(("changed type", f"{_describe(o)} -> {_describe(n)}"))
                break
            out.extend(best)
        return out

    def covers(self, o: dict[str, Any], n: dict[str, Any]) -> list[tuple[str, str]] | None:
        """None: n does not accept o's kind of value; else the narrowings (empty: fine)."""
        o, n = _strip_doc(o), _strip_doc(n)
        if not n:
            return []  # Any
        if "$ref" in o or "$ref" in n:
            if "$ref" not in o or "$ref" not in n:
                return None
            o_name, n_name = _ref_name(o["$ref"]), _ref_name(n["$ref"])
            if o_name == n_name:
                return []  # compared on its own, as a type of the registry
            if (o_name, n_name) in self.seen:
                return []
            self.seen.add((o_name, n_name))
            if o_name not in self.old or n_name not in self.new:
                return None
            inner = self.type_(o_name, self.old[o_name], self.new[n_name])
            return [] if not inner else None
        if "enum" in n or "const" in n:
            o_vals = o.get("enum", [o["const"]] if "const" in o else None)
            n_vals = n.get("enum", [n["const"]] if "const" in n else None)
            if o_vals is None:
                return None
            gone = [v for v in o_vals if v not in (n_vals or [])]
            return [("enum value removed", f"{v!r} no longer accepted") for v in gone]
        o_t, n_t = o.get("type"), n.get("type")
        if n_t is not None and o_t != n_t and not (o_t == "integer" and n_t == "number"):
            return None
        if "format" in n and n.get("format") != o.get("format"):
            return None
        issues = _narrowed(o, n)
        if n_t == "array":
            inner_issues = self.value(o.get("items", {}), n.get("items", {}))
            if any(kind == "changed type" for kind, _ in inner_issues):
                return None
            issues.extend(inner_issues)
        if n_t == "object" and "additionalProperties" in n:
            o_add, n_add = o.get("additionalProperties", {}), n["additionalProperties"]
            if isinstance(o_add, dict) and isinstance(n_add, dict):
                inner_issues = self.value(o_add, n_add)
                if any(kind == "changed type" for kind, _ in inner_issues):
                    return None
                issues.extend(inner_issues)
        return issues


def _variants(schema: dict[str, Any]) -> list[dict[str, Any]]:
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return [v for sub in schema[key] for v in _variants(sub)]
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return _variants(schema["allOf"][0])
    return [schema]


def _strip_doc(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k not in _DOC_KEYS and k != "default"}


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1].removesuffix(".json")


def _describe(schema: dict[str, Any]) -> str:
    parts = []
    for v in _variants(schema):
        if "$ref" in v:
            parts.append(_ref_name(v["$ref"]))
        elif v.get("type") == "array":
            parts.append(f"list[{_describe(v.get('items', {}))}]")
        elif "enum" in v or "const" in v:
            parts.append("literal")
        else:
            parts.append(
                "Any"
                if "type" not in v
                else v["type"] + (f"({v['format']})" if "format" in v else "")
            )
    return " | ".join(parts)


def _bound(
    schema: dict[str, Any], inclusive: str, exclusive: str, missing: float
) -> tuple[float, int]:
    """(value, strictness): an exclusive bound is stricter than an inclusive one at the same value."""
    if exclusive in schema:
        return float(schema[exclusive]), 1
    if inclusive in schema:
        return float(schema[inclusive]), 0
    return missing, 0


def _narrowed(o: dict[str, Any], n: dict[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    lo_o, lo_n = (_bound(s, "minimum", "exclusiveMinimum", -math.inf) for s in (o, n))
    if lo_n > lo_o:
        out.append(("narrowed constraint", f"lower bound {_fmt(o, 'min')} -> {_fmt(n, 'min')}"))
    hi_o, hi_n = (_bound(s, "maximum", "exclusiveMaximum", math.inf) for s in (o, n))
    if (hi_n[0], -hi_n[1]) < (hi_o[0], -hi_o[1]):
        out.append(("narrowed constraint", f"upper bound {_fmt(o, 'max')} -> {_fmt(n, 'max')}"))
    for key, missing, tighter in (
        ("minLength", 0, operator.gt),
        ("maxLength", math.inf, operator.lt),
        ("minItems", 0, operator.gt),
        ("maxItems", math.inf, operator.lt),
    ):
        if tighter(n.get(key, missing), o.get(key, missing)):
            out.append(("narrowed constraint", f"{key} {o.get(key, '-')} -> {n.get(key, '-')}"))
    for key in ("pattern", "multipleOf"):
        if key in n and n[key] != o.get(key):
            out.append(("narrowed constraint", f"{key} {o.get(key, '-')!r} -> {n[key]!r}"))
    return out


def _fmt(schema: dict[str, Any], side: str) -> str:
    inc, exc = ("minimum", "exclusiveMinimum") if side == "min" else ("maximum", "exclusiveMaximum")
    if exc in schema:
        return f"{'>' if side == 'min' else '<'} {schema[exc]}"
    if inc in schema:
        return f"{'>=' if side == 'min' else '<='} {schema[inc]}"
    return "none"


def format_problems(problems: list[Problem], *, against: str) -> str:
    """The message CI shows: what broke, where, and what to do instead."""
    lines = [
        f"{len(problems)} breaking change(s) to payload models, compared with {against}.",
        "Payloads outlive code: histories already stored, and workers of the previous release, "
        "hold payloads of the old shape, and today's models must still decode them.",
        "",
        *(str(p) for p in problems),
        "",
        "Rules and how to add a field safely: docs/compatibility.md. A snapshot is never edited to "
        "make this pass; it changes only through `uv run python scripts/update_schemas.py`, which "
        "refuses breaking changes.",
    ]
    return "\n".join(lines)
