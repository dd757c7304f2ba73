"""The uplink v1 MQTT topic tree: build topics, build subscription filters, parse topics.

Theory of operation
-------------------
Every topic starts with ``parkgrid/v1/{site}``; the next level is the box that owns the
subtree (central writes ``ack`` and ``cmd/`` into a box's subtree, so the broker's ACL can
be written per box: a box may publish under its own id only, and read its own ``ack`` and
``cmd/``). Central's own status lives under the reserved name ``_central``; box ids may
not start with ``_``.

::

    parkgrid/v1/{site}/
    ├── {box_id}/
    │   ├── status              box -> central   QoS 1  retained   BoxStatus (Last Will: offline)
    │   ├── bay/{bay_id}        box -> central   QoS 1  retained   BayState
    │   ├── lot/{lot_id}        box -> all       QoS 1  retained   LotState
    │   ├── zone/{zone_id}      box -> central   QoS 1  retained   ZoneState
    │   ├── sign/{sign_id}      box -> central   QoS 1  retained   SignState
    │   ├── event               box -> central   QoS 1  -          Event (alerts included)
    │   ├── ack                 central -> box   QoS 1  retained   AckWatermark
    │   ├── cmd/{name}          central -> box   QoS 1  -          Command
    │   └── reply/{name}        box -> central   QoS 1  -          CommandReply
    └── _central/
        └── status              central -> all   QoS 1  retained   CentralStatus (Last Will)

Alerts have no topic of their own: an alert is an event (``alert_raised`` /
``alert_resolved``) and travels on ``event`` with the same envelope and the same per-box
``seq``, so one ordered lane and one ack watermark cover everything that must not be lost.

Every id level (site, box, bay, lot, zone, sign) matches ``[A-Za-z0-9_.-]{1,64}``, which
keeps ``/``, ``+``, ``#`` and ``$`` out of the tree. ``parse_topic`` accepts exactly the
shapes above and raises :class:`~firmware_protocols.errors.DecodeError` (``fmt="uplink-v1"``)
for anything else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal

from firmware_protocols.errors import DecodeError, EncodeError

FMT: Final = "uplink-v1"
ROOT: Final = "parkgrid"
VERSION: Final = "v1"
CENTRAL_ID: Final = "_central"
WILDCARD: Final = "+"

ID_PATTERN: Final = r"[A-Za-z0-9_.-]{1,64}"
# A box id is an id that does not start with "_" (reserved for central).
BOX_ID_PATTERN: Final = r"[A-Za-z0-9.-][A-Za-z0-9_.-]{0,63}"
_ID_RE: Final = re.compile(ID_PATTERN)


class TopicKind(StrEnum):
    """What a topic carries; the key of ``PAYLOAD_MODELS``."""

    STATUS = "status"
    BAY = "bay"
    LOT = "lot"
    ZONE = "zone"
    SIGN = "sign"
    EVENT = "event"
    ACK = "ack"
    CMD = "cmd"
    REPLY = "reply"
    CENTRAL_STATUS = "central-status"


class CommandName(StrEnum):
    """The commands central may send on ``cmd/{name}`` (and a box answers on ``reply/{name}``)."""

    REBIRTH = "rebirth"
    SIGN_OVERRIDE = "sign-override"
    CLOSE_BAY = "close-bay"
    OPEN_BAY = "open-bay"
    ZONE_SCHEDULE = "zone-schedule"
    CONFIG_PUSH = "config-push"
    INSTALL_RELEASE = "install-release"


# Kinds whose topic ends in a sub-level ``{id}``; the others end at the kind.
_KINDS_WITH_ID: Final = frozenset(
    {TopicKind.BAY, TopicKind.LOT, TopicKind.ZONE, TopicKind.SIGN, TopicKind.CMD, TopicKind.REPLY}
)
_BOX_KINDS: Final = {k.value: k for k in TopicKind if k is not TopicKind.CENTRAL_STATUS}


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicSpec:
    """One row of the topic table: the shape, direction and MQTT flags of a topic kind."""

    kind: TopicKind
    pattern: str
    direction: Literal["box->central", "box->all", "central->box", "central->all"]
    qos: int
    retained: bool
    summary: str


TOPIC_SPECS: Final[tuple[TopicSpec, ...]] = (
    TopicSpec(
        kind=TopicKind.STATUS,
        pattern="parkgrid/v1/{site}/{box_id}/status",
        direction="box->central",
        qos=1,
        retained=True,
        summary="birth on connect, death as Last Will or on clean shutdown",
    ),
    TopicSpec(
        kind=TopicKind.BAY,
        pattern="parkgrid/v1/{site}/{box_id}/bay/{bay_id}",
        direction="box->central",
        qos=1,
        retained=True,
        summary="latest state of one bay and its sensor",
    ),
    TopicSpec(
        kind=TopicKind.LOT,
        pattern="parkgrid/v1/{site}/{box_id}/lot/{lot_id}",
        direction="box->all",
        qos=1,
        retained=True,
        summary="a lot's counts and status; other boxes read it for guidance",
    ),
    TopicSpec(
        kind=TopicKind.ZONE,
        pattern="parkgrid/v1/{site}/{box_id}/zone/{zone_id}",
        direction="box->central",
        qos=1,
        retained=True,
        summary="a stall zone's schedule state",
    ),
    TopicSpec(
        kind=TopicKind.SIGN,
        pattern="parkgrid/v1/{site}/{box_id}/sign/{sign_id}",
        direction="box->central",
        qos=1,
        retained=True,
        summary="what a sign shows and whether it answers",
    ),
    TopicSpec(
        kind=TopicKind.EVENT,
        pattern="parkgrid/v1/{site}/{box_id}/event",
        direction="box->central",
        qos=1,
        retained=False,
        summary="the event lane: every event and alert, in seq order, until acked",
    ),
    TopicSpec(
        kind=TopicKind.ACK,
        pattern="parkgrid/v1/{site}/{box_id}/ack",
        direction="central->box",
        qos=1,
        retained=True,
        summary="central's ack watermark for this box's events",
    ),
    TopicSpec(
        kind=TopicKind.CMD,
        pattern="parkgrid/v1/{site}/{box_id}/cmd/{name}",
        direction="central->box",
        qos=1,
        retained=False,
        summary="a command to the box",
    ),
    TopicSpec(
        kind=TopicKind.REPLY,
        pattern="parkgrid/v1/{site}/{box_id}/reply/{name}",
        direction="box->central",
        qos=1,
        retained=False,
        summary="the box's answer to a command",
    ),
    TopicSpec(
        kind=TopicKind.CENTRAL_STATUS,
        pattern="parkgrid/v1/{site}/_central/status",
        direction="central->all",
        qos=1,
        retained=True,
        summary="central online/offline (Last Will offline)",
    ),
)
SPECS_BY_KIND: Final = {spec.kind: spec for spec in TOPIC_SPECS}


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedTopic:
    """A topic read back into its parts.

    ``box_id`` is ``CENTRAL_ID`` for central's own status. ``id`` is the last level for the
    kinds that have one (bay, lot, zone and sign id; command name for cmd and reply) and
    ``None`` for the others.
    """

    site: str
    box_id: str
    kind: TopicKind
    id: str | None = None

    @property
    def command(self) -> CommandName | None:
        """The command name of a ``cmd`` or ``reply`` topic, else ``None``."""
        if self.kind in (TopicKind.CMD, TopicKind.REPLY) and self.id is not None:
            return CommandName(self.id)
        return None

    def topic(self) -> str:
        """The topic string again."""
        if self.kind is TopicKind.CENTRAL_STATUS:
            return central_status_topic(self.site)
        tail = self.kind.value if self.id is None else f"{self.kind.value}/{self.id}"
        return f"{ROOT}/{VERSION}/{self.site}/{self.box_id}/{tail}"


def is_valid_id(value: str) -> bool:
    """Whether ``value`` may be one topic level (site, box, bay, lot, zone or sign id)."""
    return _ID_RE.fullmatch(value) is not None


def check_id(value: str, *, what: str) -> str:
    """Return ``value`` if it is a valid id, else raise EncodeError naming ``what``."""
    if not is_valid_id(value):
        raise EncodeError(
            f"{what} {value!r} is not an uplink id ({ID_PATTERN})",
            fmt=FMT,
            data=value.encode("utf-8", "replace"),
        )
    return value


def check_box_id(value: str) -> str:
    """Return ``value`` if it is a valid box id (an id not starting with ``_``)."""
    check_id(value, what="box id")
    if value.startswith("_"):
        raise EncodeError(
            f"box id {value!r} starts with '_', which is reserved for central",
            fmt=FMT,
            data=value.encode(),
        )
    return value


def _check_filter_level(value: str, *, what: str) -> str:
    return value if value == WILDCARD else check_id(value, what=what)


def central_status_topic(site: str) -> str:
    """``parkgrid/v1/{site}/_central/status``."""
    return f"{ROOT}/{VERSION}/{check_id(site, what='site')}/{CENTRAL_ID}/status"


@dataclass(frozen=True, slots=True)
class Topics:
    """The topics of one box: ``Topics("xigang", "box-p1").bay("P1-017")``.

    Construction validates the site and box id, so every topic it builds is in the scheme.
    """

    site: str
    box_id: str

    def __post_init__(self) -> None:
        check_id(self.site, what="site")
        check_box_id(self.box_id)

    @property
    def prefix(self) -> str:
        """``parkgrid/v1/{site}/{box_id}``."""
        return f"{ROOT}/{VERSION}/{self.site}/{self.box_id}"

    @property
    def status(self) -> str:
        return f"{self.prefix}/status"

    @property
    def event(self) -> str:
        return f"{self.prefix}/event"

    @property
    def ack(self) -> str:
        return f"{self.prefix}/ack"

    @property
    def central_status(self) -> str:
        return central_status_topic(self.site)

    def bay(self, bay_id: str) -> str:
        return f"{self.prefix}/bay/{check_id(bay_id, what='bay id')}"

    def lot(self, lot_id: str) -> str:
        return f"{self.prefix}/lot/{check_id(lot_id, what='lot id')}"

    def zone(self, zone_id: str) -> str:
        return f"{self.prefix}/zone/{check_id(zone_id, what='zone id')}"

    def sign(self, sign_id: str) -> str:
        return f"{self.prefix}/sign/{check_id(sign_id, what='sign id')}"

    def cmd(self, name: CommandName | str) -> str:
        return f"{self.prefix}/cmd/{_command_name(name).value}"

    def reply(self, name: CommandName | str) -> str:
        return f"{self.prefix}/reply/{_command_name(name).value}"

    def is_cmd(self, topic: str) -> bool:
        """Whether ``topic`` lies under this box's ``cmd/`` (a command, well-formed or not)."""
        return topic.startswith(f"{self.prefix}/cmd/")

    # Subscription filters of the box itself.

    @property
    def cmd_filter(self) -> str:
        """``.../{box_id}/cmd/+``: every command for this box."""
        return f"{self.prefix}/cmd/+"

    @property
    def other_lots_filter(self) -> str:
        """``parkgrid/v1/{site}/+/lot/+``: every lot of the site (the box skips its own)."""
        return f"{ROOT}/{VERSION}/{self.site}/+/lot/+"

    @property
    def box_status_filter(self) -> str:
        """``parkgrid/v1/{site}/+/status``: whether each box is online (a lot whose box is
        offline, or never heard, is not pointed at)."""
        return f"{ROOT}/{VERSION}/{self.site}/+/status"

    def box_filters(self) -> tuple[str, ...]:
        """Everything a box subscribes to: its commands, its ack, all lots, every box's
        status, central's status. The broker's ACL grants a box read on exactly these
        (``central.provision.box_acl``), so the two cannot drift apart."""
        return (
            self.cmd_filter,
            self.ack,
            self.other_lots_filter,
            self.box_status_filter,
            self.central_status,
        )


def _command_name(name: CommandName | str) -> CommandName:
    try:
        return CommandName(name)
    except ValueError:
        raise EncodeError(
            f"unknown command {name!r}; known: {', '.join(c.value for c in CommandName)}",
            fmt=FMT,
            data=str(name).encode("utf-8", "replace"),
        ) from None


def central_filters(site: str = WILDCARD, *, box_id: str = WILDCARD) -> tuple[str, ...]:
    """What central subscribes to: every box-published topic of ``site`` (``+`` = all sites)."""
    base = (
        f"{ROOT}/{VERSION}/{_check_filter_level(site, what='site')}/"
        f"{_check_filter_level(box_id, what='box id')}"
    )
    return (
        f"{base}/status",
        f"{base}/bay/+",
        f"{base}/lot/+",
        f"{base}/zone/+",
        f"{base}/sign/+",
        f"{base}/event",
        f"{base}/reply/+",
    )


def shared_filter(group: str, topic_filter: str) -> str:
    """The MQTT 5 shared subscription ``$share/{group}/{filter}`` for ingest workers."""
    return f"$share/{check_id(group, what='share group')}/{topic_filter}"


def parse_topic(topic: str) -> ParsedTopic:
    """Read a topic of the v1 tree; raise DecodeError for anything outside the scheme."""
    parts = topic.split("/")

    def fail(reason: str, level: int | None = None) -> DecodeError:
        offset = None if level is None else sum(len(p) + 1 for p in parts[:level])
        return DecodeError(
            f"topic {topic!r}: {reason}",
            fmt=FMT,
            data=topic.encode("utf-8", "replace"),
            offset=offset,
        )

    if len(parts) < 5 or parts[0] != ROOT:
        raise fail(f"not a parkgrid topic (expected {ROOT}/{VERSION}/{{site}}/{{box_id}}/...)")
    if parts[1] != VERSION:
        raise fail(f"unsupported uplink version {parts[1]!r} (this decoder reads {VERSION})", 1)
    site, owner, kind_text, rest = parts[2], parts[3], parts[4], parts[5:]
    if not is_valid_id(site):
        raise fail(f"site {site!r} is not an id ({ID_PATTERN})", 2)

    if owner == CENTRAL_ID:
        if kind_text != "status" or rest:
            raise fail("central publishes only _central/status", 4)
        return ParsedTopic(site=site, box_id=CENTRAL_ID, kind=TopicKind.CENTRAL_STATUS)
    if not is_valid_id(owner) or owner.startswith("_"):
        raise fail(f"box id {owner!r} is not a box id ({ID_PATTERN}, not starting with '_')", 3)

    kind = _BOX_KINDS.get(kind_text)
    if kind is None:
        raise fail(f"unknown topic kind {kind_text!r}", 4)
    if kind not in _KINDS_WITH_ID:
        if rest:
            raise fail(f"kind {kind_text!r} takes no further level", 5)
        return ParsedTopic(site=site, box_id=owner, kind=kind)
    if len(rest) != 1:
        raise fail(f"kind {kind_text!r} needs exactly one id level after it", 5)
    item = rest[0]
    if kind in (TopicKind.CMD, TopicKind.REPLY):
        if item not in CommandName._value2member_map_:
            raise fail(f"unknown command {item!r}", 5)
    elif not is_valid_id(item):
        raise fail(f"{kind_text} id {item!r} is not an id ({ID_PATTERN})", 5)
    return ParsedTopic(site=site, box_id=owner, kind=kind, id=item)
