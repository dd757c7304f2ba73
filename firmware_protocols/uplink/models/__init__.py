"""The uplink v1 payloads: JSON on the wire, pydantic models here.

Theory of operation
-------------------
Two lanes share the broker. The **state lane** carries latest-value-wins documents
(``BoxStatus``, ``BayState``, ``LotState``, ``ZoneState``, ``SignState``), published retained
at QoS 1; a newer one simply replaces the older. The **event lane** carries ``Event``
envelopes that must each be stored exactly once::

    {"v":1, "box_id":"box-p1", "boot_id":"<uuid>", "seq":4711, "event_id":"<uuid>",
     "ts":"2025-03-01T08:00:00Z", "historical":false,
     "body":{"kind":"bay_changed", ...}}
          |                          |            |
          |                          |            +-- persistent per box, 1..2**63-1, never reused
          |                          +--------------- new on every boot of the box
          +------------------------------------------ protocol version of this document

Central stores events unique on ``(box_id, seq)`` and answers with a retained
``AckWatermark`` (``acked_seq``: it holds every event of that box with ``seq <= acked_seq``);
the box deletes its outbox up to there. An ``events_dropped`` event reports a seq range the
box had to throw away (outbox overflow), so central counts those seqs as settled and the
watermark can pass them.

Every top-level payload carries ``v`` (``1``). Every model is frozen and forbids unknown
fields, so a typo on either side is a validation error, not silently dropped data. All
timestamps are RFC 3339 with an offset (``Z`` when written by parkgrid).

Modules, by message family: ``base`` (the shared model bases and field types),
``vocabularies`` (the enumerations), ``statuses`` (box and central presence), ``states`` (the
state lane), ``events`` (the event lane and its ack), ``commands`` (commands and replies).
Import from the package.
"""

from __future__ import annotations

from firmware_protocols.uplink.models.base import (
    MAX_SEQ,
    SEQ_HEADROOM,
    BoxId,
    Count,
    Id,
    ModbusUnit,
    Seq,
    Text,
    Ts,
)
from firmware_protocols.uplink.models.commands import (
    CloseBay,
    Command,
    CommandBody,
    CommandReply,
    ConfigPush,
    DateOverride,
    InstallRelease,
    LadderStep,
    OpenBay,
    Rebirth,
    ScheduleDocument,
    SignOverride,
    TimeWindow,
    WeeklyWindow,
    ZoneSchedule,
    ZoneScheduleCommand,
)
from firmware_protocols.uplink.models.events import (
    AckWatermark,
    AlertRaised,
    AlertResolved,
    BayChanged,
    Event,
    EventBody,
    EventsDropped,
    SensorFault,
    SensorRecovered,
    SignFault,
    SignRecovered,
    ZoneTransition,
)
from firmware_protocols.uplink.models.states import (
    BayState,
    LotState,
    SensorInfo,
    SignDisplay,
    SignState,
    Window,
    ZoneState,
)
from firmware_protocols.uplink.models.statuses import (
    BoxStatus,
    CentralStatus,
    ClockStatus,
    ConfigApply,
    HealthSummary,
    LaneHealth,
    OutboxHealth,
    ReleaseReport,
    SensorsHealth,
    SerialLineHealth,
    SignBusHealth,
    SignUnitHealth,
    SiteConfigReport,
)
from firmware_protocols.uplink.models.vocabularies import (
    AlertType,
    BayOccupancy,
    LotStatus,
    OfflineReason,
    Online,
    SensorFaultType,
    SensorFlag,
    Severity,
    SignArrow,
    SignColour,
    SignMode,
    Trend,
    Weekday,
    ZoneClass,
    ZoneOpenState,
)
from firmware_protocols.uplink.topics import CommandName  # the type of a reply's ``command``

Payload = (
    BoxStatus
    | BayState
    | LotState
    | ZoneState
    | SignState
    | Event
    | AckWatermark
    | Command
    | CommandReply
    | CentralStatus
)

__all__ = [
    "MAX_SEQ",
    "SEQ_HEADROOM",
    "AckWatermark",
    "AlertRaised",
    "AlertResolved",
    "AlertType",
    "BayChanged",
    "BayOccupancy",
    "BayState",
    "BoxId",
    "BoxStatus",
    "CentralStatus",
    "ClockStatus",
    "CloseBay",
    "Command",
    "CommandBody",
    "CommandName",
    "CommandReply",
    "ConfigApply",
    "ConfigPush",
    "Count",
    "DateOverride",
    "Event",
    "EventBody",
    "EventsDropped",
    "HealthSummary",
    "Id",
    "InstallRelease",
    "LadderStep",
    "LaneHealth",
    "LotState",
    "LotStatus",
    "ModbusUnit",
    "OfflineReason",
    "Online",
    "OpenBay",
    "OutboxHealth",
    "Payload",
    "Rebirth",
    "ReleaseReport",
    "ScheduleDocument",
    "SensorFault",
    "SensorFaultType",
    "SensorFlag",
    "SensorInfo",
    "SensorRecovered",
    "SensorsHealth",
    "Seq",
    "SerialLineHealth",
    "Severity",
    "SignArrow",
    "SignBusHealth",
    "SignColour",
    "SignDisplay",
    "SignFault",
    "SignMode",
    "SignOverride",
    "SignRecovered",
    "SignState",
    "SignUnitHealth",
    "SiteConfigReport",
    "Text",
    "TimeWindow",
    "Trend",
    "Ts",
    "Weekday",
    "WeeklyWindow",
    "Window",
    "ZoneClass",
    "ZoneOpenState",
    "ZoneSchedule",
    "ZoneScheduleCommand",
    "ZoneState",
    "ZoneTransition",
]
