"""The event lane: the ``Event`` envelope, its typed bodies, and central's ack watermark."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal, Self

from pydantic import AwareDatetime, Field, model_validator

from firmware_protocols.uplink.models.base import (
    KIND_DESCRIPTION,
    MAX_SEQ,
    BoxId,
    Count,
    Document,
    Id,
    ModbusUnit,
    Seq,
    Text,
    Ts,
    WireModel,
    check_line,
    line_field,
    line_from_field,
    one_of_lot_or_zone,
    v_field,
)
from firmware_protocols.uplink.models.states import Window
from firmware_protocols.uplink.models.vocabularies import (
    AlertType,
    BayOccupancy,
    SensorFaultType,
    Severity,
    ZoneOpenState,
)


class BayChanged(WireModel):
    kind: Literal["bay_changed"] = Field(default="bay_changed", description=KIND_DESCRIPTION)
    bay_id: Id = Field(description="The bay.")
    lot_id: Id | None = Field(default=None, description="Its lot, if any.")
    zone_id: Id | None = Field(default=None, description="Its zone, if any.")
    from_state: BayOccupancy = Field(description="State before.")
    to_state: BayOccupancy = Field(description="State after.")
    sensor_id: Id | None = Field(default=None, description="Sensor that reported the change.")
    sensor_ts: AwareDatetime = Field(description="When the change happened (sensor time).")

    @model_validator(mode="after")
    def _check(self) -> Self:
        one_of_lot_or_zone(self.lot_id, self.zone_id)
        return self


class SensorFault(WireModel):
    kind: Literal["sensor_fault"] = Field(default="sensor_fault", description=KIND_DESCRIPTION)
    sensor_id: Id = Field(description="The sensor.")
    bay_id: Id | None = Field(default=None, description="Its bay, if mapped.")
    fault: SensorFaultType = Field(description="What is wrong.")
    detail: Text | None = Field(default=None, description="Human-readable detail.")
    last_seen: AwareDatetime | None = Field(default=None, description="Last frame heard.")


class SensorRecovered(WireModel):
    kind: Literal["sensor_recovered"] = Field(
        default="sensor_recovered", description=KIND_DESCRIPTION
    )
    sensor_id: Id = Field(description="The sensor.")
    bay_id: Id | None = Field(default=None, description="Its bay, if mapped.")
    fault: SensorFaultType = Field(description="The fault that cleared.")


class SignFault(WireModel):
    kind: Literal["sign_fault"] = Field(default="sign_fault", description=KIND_DESCRIPTION)
    sign_id: Id = Field(description="The sign.")
    bus: Id = Field(description="Its bus.")
    unit: ModbusUnit = Field(description="Its unit address.")
    reason: Text = Field(description="e.g. 'timeout', 'crc', 'exception 2', 'readback mismatch'.")
    failures: Count = Field(default=0, description="Consecutive failures before it went down.")


class SignRecovered(WireModel):
    kind: Literal["sign_recovered"] = Field(default="sign_recovered", description=KIND_DESCRIPTION)
    sign_id: Id = Field(description="The sign.")
    bus: Id = Field(description="Its bus.")
    unit: ModbusUnit = Field(description="Its unit address.")
    down_since: AwareDatetime | None = Field(default=None, description="When it went down.")


class ZoneTransition(WireModel):
    kind: Literal["zone_transition"] = Field(
        default="zone_transition", description=KIND_DESCRIPTION
    )
    zone_id: Id = Field(description="The zone.")
    from_state: ZoneOpenState = Field(description="State before.")
    to_state: ZoneOpenState = Field(description="State after.")
    window: Window | None = Field(default=None, description="The window now in force, if any.")
    schedule_version: Count = Field(description="Schedule version that decided it.")


class AlertRaised(WireModel):
    """An alert, or a further step of it: same ``alert_id``, higher ``step``."""

    kind: Literal["alert_raised"] = Field(default="alert_raised", description=KIND_DESCRIPTION)
    alert_id: Id = Field(description="Stable id of this alert across its steps and resolution.")
    alert_type: AlertType = Field(description="What kind of alert.")
    severity: Severity = Field(description="info, warning, escalated or critical.")
    step: Count = Field(default=0, description="Escalation ladder step, 0 for the first.")
    since: AwareDatetime = Field(description="When the condition began.")
    message: Text = Field(description="Human-readable message.")
    lot_id: Id | None = Field(default=None, description="Lot concerned, if any.")
    zone_id: Id | None = Field(default=None, description="Zone concerned, if any.")
    bay_id: Id | None = Field(default=None, description="Bay concerned, if any.")
    sign_id: Id | None = Field(default=None, description="Sign concerned, if any.")
    sensor_id: Id | None = Field(default=None, description="Sensor concerned, if any.")


class AlertResolved(WireModel):
    """The end of an alert; ``alert_id`` names the alert raised earlier."""

    kind: Literal["alert_resolved"] = Field(default="alert_resolved", description=KIND_DESCRIPTION)
    alert_id: Id = Field(description="The alert that ended.")
    alert_type: AlertType = Field(description="Its type.")
    since: AwareDatetime = Field(description="When the condition began.")
    message: Text | None = Field(default=None, description="How it ended, if known.")
    lot_id: Id | None = Field(default=None, description="Lot concerned, if any.")
    zone_id: Id | None = Field(default=None, description="Zone concerned, if any.")
    bay_id: Id | None = Field(default=None, description="Bay concerned, if any.")
    sign_id: Id | None = Field(default=None, description="Sign concerned, if any.")
    sensor_id: Id | None = Field(default=None, description="Sensor concerned, if any.")


class EventsDropped(WireModel):
    """The outbox overflowed and the box deleted events ``first_seq..last_seq`` unsent.

    Central counts those seqs as settled so its ack watermark can pass them. The box reports
    a drop after it happened, so the range ends below the reporting event's own ``seq``
    (``Event`` refuses anything else); central also refuses a range longer than the box's
    outbox can hold (see docs/central.md).
    """

    kind: Literal["events_dropped"] = Field(default="events_dropped", description=KIND_DESCRIPTION)
    first_seq: Seq = Field(description="First dropped seq (inclusive).")
    last_seq: Seq = Field(description="Last dropped seq (inclusive).")
    count: Count = Field(description="Events dropped in this range.")
    total: Count = Field(description="Events dropped by this box ever.")

    @model_validator(mode="after")
    def _range(self) -> Self:
        if self.last_seq < self.first_seq:
            raise ValueError("last_seq must not be below first_seq")
        if self.count > self.last_seq - self.first_seq + 1:
            raise ValueError("count exceeds the seq range")
        return self


EventBody = Annotated[
    BayChanged
    | SensorFault
    | SensorRecovered
    | SignFault
    | SignRecovered
    | ZoneTransition
    | AlertRaised
    | AlertResolved
    | EventsDropped,
    Field(discriminator="kind"),
]


class Event(Document):
    """One event on ``.../event``: the envelope that makes delivery exactly-once.

    The event's kind is ``body.kind`` (and the ``kind`` property): it lives in one place, so
    envelope and body cannot disagree.
    """

    v: Literal[1] = v_field()
    box_id: BoxId = Field(description="The box that produced the event.")
    boot_id: uuid.UUID = Field(description="The boot of the box in which it was produced.")
    seq: Seq = Field(
        description="Per-box sequence number, persistent across reboots, 1..2**63-1; "
        "central stores events unique on (box_id, seq)."
    )
    event_id: uuid.UUID = Field(description="Globally unique id of the event.")
    ts: AwareDatetime = Field(description="When the event happened (box clock).")
    historical: bool = Field(
        default=False,
        description="True when sent again from the outbox backlog rather than live.",
    )
    body: EventBody = Field(description="The typed body, discriminated on 'kind'.")
    line: uuid.UUID | None = line_field()
    line_from: int | None = line_from_field()

    @property
    def kind(self) -> str:
        return self.body.kind

    @model_validator(mode="after")
    def _on_its_line(self) -> Self:
        check_line(self.line, self.line_from)
        if self.line_from is not None and self.line_from > self.seq:
            raise ValueError(
                f"line_from {self.line_from} is above the event's own seq {self.seq}: "
                "no seq of a line is below its first"
            )
        return self

    @model_validator(mode="after")
    def _dropped_before_own_seq(self) -> Self:
        body = self.body
        if isinstance(body, EventsDropped) and body.last_seq >= self.seq:
            raise ValueError(
                f"events_dropped range {body.first_seq}..{body.last_seq} must end below the "
                f"event's own seq {self.seq}: a box reports a drop after it happened"
            )
        return self


# --- AckWatermark ----------------------------------------------------------------------------


class AckWatermark(Document):
    """Central's ack for one box; retained on ``.../{box_id}/ack``.

    ``line``/``line_from`` name the seq line whose events the watermark counts (the line of
    the box's latest events central took). A box on that line deletes every outbox event
    with ``seq <= acked_seq``; a box on another line deletes nothing and renumbers its
    events above ``acked_seq`` if its line starts at or below it. An ack without a line is
    for a legacy box (see docs/edge-uplink.md).
    """

    v: Literal[1] = v_field()
    box_id: BoxId = Field(description="The box this ack is for.")
    acked_seq: Annotated[int, Field(ge=0, le=MAX_SEQ)] = Field(
        description="Central holds (or counts as dropped) every event of the box with "
        "seq <= acked_seq; 0 when it holds none yet."
    )
    ts: Ts
    line: uuid.UUID | None = line_field()
    line_from: int | None = line_from_field()

    @model_validator(mode="after")
    def _whole_line(self) -> Self:
        check_line(self.line, self.line_from)
        return self
