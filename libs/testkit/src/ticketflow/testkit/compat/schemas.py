"""JSON-schema snapshots of the boundary types, and the rules a change to them must keep.

Pure functions (no I/O): ``scripts/update_schemas.py`` writes the snapshots, the tests in
``libs/contracts/tests/`` compare them with today's models. Why hand-written and not a PyPI checker
(jsoncompat, stable-pydantic): see docs/compatibility.md. In short: our rules are a short, exact
list, and the message must name the model, the field and what to do instead.

A snapshot is one file per type (``<Name>.json``): the type's own pydantic JSON schema (validation
mode: the shape a reader accepts), nested types referenced as sibling files (``"$ref":
"Ticket.json"``), plus ``"x-ticketflow": {"schema_version": N}`` for models. Every model and enum
reachable from ``boundary.BOUNDARY_MODELS`` and ``boundary.SEARCH_ATTRIBUTE_VALUES`` has one.

Breaking (a reader of today could not decode what a writer of the snapshot wrote):
a new required field, a removed or renamed field, a changed type (narrowed: ``int -> str``,
``float -> int``, ``X | None -> X``), a removed default, a changed default, a narrowed constraint
(a shorter max_length, a higher minimum, a new pattern), a removed enum value, a removed type,
unknown fields newly forbidden. Compatible: a new field with a default, a new enum value, a widened
type or constraint, a new type, documentation.
"""

from __future__ import annotations

import enum
import json
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, TypeAdapter
from ticketflow.contracts.boundary import BOUNDARY_MODELS, SEARCH_ATTRIBUTE_VALUES

__all__ = [
    "META",
    "Schemas",
    "current_schemas",
    "render",
    "schema_types",
    "schemas_for",
    "stale",
]

META = "x-ticketflow"
REF_TEMPLATE = "{model}.json"
Schemas = dict[str, dict[str, Any]]  # type name -> its snapshot


def _nested_types(tp: Any) -> Iterable[type]:
    """The models and enums an annotation mentions (through unions, lists, Annotated...)."""
    if isinstance(tp, type) and issubclass(tp, (BaseModel, enum.Enum)):
        yield tp
        return
    for arg in typing.get_args(tp):
        yield from _nested_types(arg)


def schema_types(roots: Iterable[type] | None = None) -> dict[str, type]:
    """Name -> type for every model and enum reachable from the roots (default: the registry)."""
    if roots is None:
        roots = [*BOUNDARY_MODELS, *SEARCH_ATTRIBUTE_VALUES.values()]
    found: dict[str, type] = {}
    todo = list(roots)
    while todo:
        tp = todo.pop()
        if tp.__name__ in found:
            if found[tp.__name__] is not tp:
                raise ValueError(f"two boundary types are named {tp.__name__}: rename one")
            continue
        found[tp.__name__] = tp
        if issubclass(tp, BaseModel):
            for info in tp.model_fields.values():
                todo.extend(_nested_types(info.annotation))
                for meta in info.metadata:
                    todo.extend(_nested_types(meta))
    return dict(sorted(found.items()))


def schemas_for(types_by_name: Mapping[str, type]) -> Schemas:
    """The snapshot of each type, as ``scripts/update_schemas.py`` writes it."""
    out: Schemas = {}
    for name, tp in types_by_name.items():
        schema = TypeAdapter(tp).json_schema(mode="validation", ref_template=REF_TEMPLATE)
        schema.pop("$defs", None)  # each nested type is its own file
        if issubclass(tp, BaseModel):
            schema[META] = {"schema_version": getattr(tp, "SCHEMA_VERSION", 1)}
        out[name] = schema
    return out


def current_schemas() -> Schemas:
    return schemas_for(schema_types())


def render(schema: Mapping[str, Any]) -> str:
    """A snapshot file's exact text (stable, so a diff shows only what changed)."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# ---- comparison ------------------------------------------------------------------------------

_DOC_KEYS = {"title", "description", "examples", META}


def _structure(schema: Any, *, in_properties: bool = False) -> Any:
    """The schema without documentation (a field may well be *named* title: keep those)."""
    if isinstance(schema, dict):
        return {
            k: _structure(v, in_properties=(k == "properties" and not in_properties))
            for k, v in schema.items()
            if in_properties or k not in _DOC_KEYS
        }
    if isinstance(schema, list):
        return [_structure(v) for v in schema]
    return schema


def _version(schema: Mapping[str, Any]) -> int | None:
    meta = schema.get(META)
    return meta.get("schema_version") if isinstance(meta, dict) else None


def stale(old: Schemas, new: Schemas) -> list[str]:
    """Why the committed snapshots are not today's (each line says what to run or change)."""
    out: list[str] = []
    for name in sorted(new.keys() - old.keys()):
        out.append(f"{name}: no snapshot yet (a new boundary type)")
    for name in sorted(old.keys() - new.keys()):
        out.append(f"{name}: snapshot of a type that is no longer registered")
    for name in sorted(old.keys() & new.keys()):
        o, n = old[name], new[name]
        if render(o) == render(n):
            continue
        ov, nv = _version(o), _version(n)
        if _structure(o) != _structure(n) and ov is not None and (nv or 0) <= ov:
            out.append(
                f"{name}: schema changed but SCHEMA_VERSION is still {nv}: set "
                f"`SCHEMA_VERSION: ClassVar[int] = {ov + 1}` on {name} and add a line for it to "
                "libs/contracts/CHANGELOG.md"
            )
        else:
            out.append(f"{name}: snapshot out of date")
    return out
