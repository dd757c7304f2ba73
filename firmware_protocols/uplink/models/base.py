"""What every uplink v1 model shares: strict frozen models, the ``v`` field, field types.

Every top-level document (a :class:`Document`) carries ``v`` (``1``), required on the wire.
Every model is frozen, strict and forbids unknown fields, so a typo on either side is a
validation error, not silently dropped data.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from firmware_protocols.uplink.topics import BOX_ID_PATTERN, ID_PATTERN

MAX_SEQ = 2**63 - 1
SEQ_HEADROOM = 2**40
"""A box renumbers its line (``edge.outbox``) only while this many seqs stay free above it
(35,000 years of events at 1,000 a second): no real watermark comes that near the top."""

Id = Annotated[str, StringConstraints(pattern=f"^{ID_PATTERN}$")]
BoxId = Annotated[str, StringConstraints(pattern=f"^{BOX_ID_PATTERN}$")]
Seq = Annotated[int, Field(ge=1, le=MAX_SEQ)]
Count = Annotated[int, Field(ge=0)]
Ts = Annotated[AwareDatetime, Field(description="When the box wrote this document (RFC 3339).")]
ModbusUnit = Annotated[int, Field(ge=0, le=247)]
Text = Annotated[str, StringConstraints(max_length=500)]


class WireModel(BaseModel):
    # strict: on the wire "seq": "7" or "free": "3" is a sender's bug, not something to coerce.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def require_v_in_schema(schema: dict[str, Any]) -> None:
    required = schema.setdefault("required", [])
    if "v" not in required:
        required.insert(0, "v")


class Document(WireModel):
    """A top-level document. Its ``v`` defaults to 1 in Python but is required on the wire:
    the schema lists it as required and ``codec.decode_payload`` refuses a document
    without it, so a consumer never has to guess which version it reads."""

    model_config = ConfigDict(json_schema_extra=require_v_in_schema)


def v_field() -> Any:
    return Field(default=1, description="Uplink protocol version of this document; always 1.")


def one_of_lot_or_zone(lot_id: str | None, zone_id: str | None) -> None:
    if (lot_id is None) == (zone_id is None):
        raise ValueError("exactly one of lot_id and zone_id must be set")


def omitted_if_none(value: Any) -> bool:
    """Optional fields added to v1 after its first boxes shipped: left out of the JSON when
    None, so a legacy document encodes byte for byte as before (old readers forbid
    unknown fields, null ones too)."""
    return value is None


def line_field() -> Any:
    return Field(
        default=None,
        exclude_if=omitted_if_none,
        description="The box's seq line: a random id made with its outbox file (a new file, "
        "a new line). Absent from legacy boxes and from acks for them.",
    )


def line_from_field() -> Any:
    return Field(
        default=None,
        ge=1,
        le=MAX_SEQ,
        exclude_if=omitted_if_none,
        description="The first seq of the line: none of its seqs is below it (1 for a new "
        "outbox; higher once the box renumbered its events above an older line's "
        "watermark). Present exactly when line is.",
    )


def check_line(line: object, line_from: int | None) -> None:
    if (line is None) != (line_from is None):
        raise ValueError("line and line_from come together or not at all")


KIND_DESCRIPTION = "Event kind; selects the body type."
COMMAND_DESCRIPTION = "Command name; equals the {name} level of the cmd topic."
