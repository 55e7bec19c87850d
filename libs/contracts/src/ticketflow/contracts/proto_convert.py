"""Pure converters between contracts' pydantic models and ticketflow.v1 protobuf messages.

Field names match one to one. Enums follow buf's convention: the Python value ``"refund"`` of
``Category`` is ``CATEGORY_REFUND`` on the wire, ``None``/absent is the ``*_UNSPECIFIED`` zero value.
Timestamps are ``google.protobuf.Timestamp``; money stays integer cents (int64).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TypeVar

from google.protobuf.descriptor import EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import BaseModel

M = TypeVar("M", bound=Message)
P = TypeVar("P", bound=BaseModel)

__all__ = ["enum_from_proto", "enum_to_proto", "from_proto", "to_proto"]


# protobuf's stubs type a message's fields as a union of the upb and pure-Python descriptor classes.
_Field = Any


def _enum_of(field: _Field) -> EnumDescriptor:
    desc: EnumDescriptor | None = field.enum_type
    assert desc is not None, f"{field.full_name} is an enum field without an enum type"
    return desc


def _is_timestamp(field: _Field) -> bool:
    return bool(
        field.message_type is not None
        and field.message_type.full_name == "google.protobuf.Timestamp"
    )


def _enum_prefix(desc: EnumDescriptor) -> str:
    # TicketStatus -> TICKET_STATUS_, ModelTier -> MODEL_TIER_
    return re.sub(r"(?<!^)(?=[A-Z])", "_", desc.name).upper() + "_"


def enum_to_proto(desc: EnumDescriptor, value: Enum | str | None) -> int:
    if value is None:
        return 0
    raw = value.value if isinstance(value, Enum) else value
    return desc.values_by_name[_enum_prefix(desc) + str(raw).upper()].number


def enum_from_proto(desc: EnumDescriptor, number: int) -> str | None:
    """The contracts' enum value for a wire number; None for UNSPECIFIED or an unknown number."""
    if number == 0 or number not in desc.values_by_number:
        return None
    name = desc.values_by_number[number].name.removeprefix(_enum_prefix(desc))
    return name  # callers match case-insensitively via _enum_value


def _fill(msg: Message, data: dict[str, Any]) -> None:
    for field in msg.DESCRIPTOR.fields:
        if field.name not in data:
            continue
        value = data[field.name]
        if value is None:
            continue
        if field.is_repeated:
            target = getattr(msg, field.name)
            for item in value:
                if field.type == FieldDescriptor.TYPE_MESSAGE:
                    _fill(target.add(), _as_dict(item))
                elif field.type == FieldDescriptor.TYPE_ENUM:
                    target.append(enum_to_proto(_enum_of(field), item))
                else:
                    target.append(item)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if _is_timestamp(field):
                getattr(msg, field.name).FromDatetime(_utc(value))
            else:
                _fill(getattr(msg, field.name), _as_dict(value))
        elif field.type == FieldDescriptor.TYPE_ENUM:
            setattr(msg, field.name, enum_to_proto(_enum_of(field), value))
        else:
            setattr(msg, field.name, value)


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, BaseModel):
        return {k: getattr(value, k) for k in type(value).model_fields}
    return dict(value)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def to_proto(model: BaseModel | dict[str, Any], message_cls: type[M]) -> M:
    """A message filled from the model's fields of the same names (unknown names are skipped)."""
    msg = message_cls()
    _fill(msg, _as_dict(model))
    return msg


def _read(msg: Message) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in msg.DESCRIPTOR.fields:
        value = getattr(msg, field.name)
        if field.is_repeated:
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                out[field.name] = [_read(v) for v in value]
            elif field.type == FieldDescriptor.TYPE_ENUM:
                out[field.name] = [enum_from_proto(_enum_of(field), v) for v in value]
            else:
                out[field.name] = list(value)
            continue
        if field.has_presence and not msg.HasField(field.name):
            out[field.name] = None
            continue
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if _is_timestamp(field):
                ts: Timestamp = value
                out[field.name] = ts.ToDatetime(tzinfo=UTC)
            else:
                out[field.name] = _read(value)
        elif field.type == FieldDescriptor.TYPE_ENUM:
            out[field.name] = enum_from_proto(_enum_of(field), value)
        else:
            out[field.name] = value
    return out


def from_proto(msg: Message, model_cls: type[P]) -> P:
    """The model validated from the message; enum names are matched to the model's enum values."""
    data = _read(msg)
    return model_cls.model_validate(_lower_enums(model_cls, data))


def _lower_enums(model_cls: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    # Proto enum names are upper case; contracts enum values are either upper (TicketStatus)
    # or lower (Category...). Resolve each against the model's annotation.
    out = dict(data)
    for name, info in model_cls.model_fields.items():
        if name not in out or out[name] is None:
            continue
        out[name] = _coerce(info.annotation, out[name])
    return out


def _coerce(annotation: Any, value: Any) -> Any:
    import typing

    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin is list and args:
        return [_coerce(args[0], v) for v in value]
    candidates = args or [annotation]
    for cand in candidates:
        if isinstance(cand, type) and issubclass(cand, Enum) and isinstance(value, str):
            for member in cand:
                if str(member.value).upper() == value.upper():
                    return member
        if isinstance(cand, type) and issubclass(cand, BaseModel) and isinstance(value, dict):
            return _lower_enums(cand, value)
    return value
