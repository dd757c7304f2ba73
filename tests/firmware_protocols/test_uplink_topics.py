"""Uplink v1 topic tree: building, filters and parsing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_protocols.errors import DecodeError, EncodeError
from firmware_protocols.uplink import (
    CENTRAL_ID,
    TOPIC_SPECS,
    CommandName,
    ParsedTopic,
    TopicKind,
    Topics,
    central_filters,
    central_status_topic,
    parse_topic,
    shared_filter,
)

T = Topics("xigang", "box-p1")

ids = st.text(alphabet="ABCxyz019_.-", min_size=1, max_size=64)
box_ids = ids.filter(lambda s: not s.startswith("_"))


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        pytest.param(T.status, ParsedTopic(site="xigang", box_id="box-p1", kind=TopicKind.STATUS)),
        pytest.param(
            T.bay("P1-017"),
            ParsedTopic(site="xigang", box_id="box-p1", kind=TopicKind.BAY, id="P1-017"),
        ),
        pytest.param(
            T.lot("P1"), ParsedTopic(site="xigang", box_id="box-p1", kind=TopicKind.LOT, id="P1")
        ),
        pytest.param(
            T.zone("S3"),
            ParsedTopic(site="xigang", box_id="box-p1", kind=TopicKind.ZONE, id="S3"),
        ),
        pytest.param(
            T.sign("entry.1"),
            ParsedTopic(site="xigang", box_id="box-p1", kind=TopicKind.SIGN, id="entry.1"),
        ),
        pytest.param(T.event, ParsedTopic(site="xigang", box_id="box-p1", kind=TopicKind.EVENT)),
        pytest.param(T.ack, ParsedTopic(site="xigang", box_id="box-p1", kind=TopicKind.ACK)),
        pytest.param(
            T.cmd(CommandName.REBIRTH),
            ParsedTopic(site="xigang", box_id="box-p1", kind=TopicKind.CMD, id="rebirth"),
        ),
        pytest.param(
            T.reply("zone-schedule"),
            ParsedTopic(site="xigang", box_id="box-p1", kind=TopicKind.REPLY, id="zone-schedule"),
        ),
        pytest.param(
            T.central_status,
            ParsedTopic(site="xigang", box_id=CENTRAL_ID, kind=TopicKind.CENTRAL_STATUS),
        ),
    ],
)
def test_topics_build_parse_round_trip(topic: str, expected: ParsedTopic) -> None:
    """Every built topic parses back into its parts, and the parts build the same topic."""
    parsed = parse_topic(topic)
    assert parsed == expected
    assert parsed.topic() == topic


def test_topics_exact_strings() -> None:
    """The builder writes the documented shapes."""
    assert T.status == "parkgrid/v1/xigang/box-p1/status"
    assert T.bay("P1-017") == "parkgrid/v1/xigang/box-p1/bay/P1-017"
    assert T.event == "parkgrid/v1/xigang/box-p1/event"
    assert T.ack == "parkgrid/v1/xigang/box-p1/ack"
    assert T.cmd("sign-override") == "parkgrid/v1/xigang/box-p1/cmd/sign-override"
    assert T.reply("rebirth") == "parkgrid/v1/xigang/box-p1/reply/rebirth"
    assert central_status_topic("xigang") == "parkgrid/v1/xigang/_central/status"


def test_topics_every_spec_kind_parses() -> None:
    """Each row of TOPIC_SPECS, filled with ids, parses to its own kind."""
    for spec in TOPIC_SPECS:
        topic = spec.pattern.format(
            site="s", box_id="b", bay_id="x", lot_id="x", zone_id="x", sign_id="x", name="rebirth"
        )
        assert parse_topic(topic).kind is spec.kind


def test_topics_command_property() -> None:
    """cmd and reply topics expose their command name; others give None."""
    assert parse_topic(T.cmd("open-bay")).command is CommandName.OPEN_BAY
    assert parse_topic(T.status).command is None


@pytest.mark.parametrize(
    ("site", "box_id"),
    [
        pytest.param("", "box", id="empty-site"),
        pytest.param("xi/gang", "box", id="slash-in-site"),
        pytest.param("xigang", "box+1", id="plus-in-box"),
        pytest.param("xigang", "box#", id="hash-in-box"),
        pytest.param("xigang", "_central", id="reserved-box"),
        pytest.param("xigang", "_x", id="underscore-box"),
        pytest.param("xigang", "b" * 65, id="box-too-long"),
        pytest.param("xigang", "bäy", id="non-ascii-box"),
    ],
)
def test_topics_invalid_ids_refused(site: str, box_id: str) -> None:
    """A Topics with an id outside the scheme cannot be built."""
    with pytest.raises(EncodeError) as info:
        Topics(site, box_id)
    assert info.value.fmt == "uplink-v1"


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: T.bay("a/b"), id="slash-bay"),
        pytest.param(lambda: T.lot("+"), id="plus-lot"),
        pytest.param(lambda: T.sign(""), id="empty-sign"),
        pytest.param(lambda: T.cmd("reboot"), id="unknown-command"),
    ],
)
def test_topics_invalid_sub_ids_refused(build: object) -> None:
    """Sub-level ids and command names are checked too."""
    assert callable(build)
    with pytest.raises(EncodeError, match=r"uplink id|unknown command"):
        build()


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        pytest.param("", "not a parkgrid topic", id="empty"),
        pytest.param("parkgrid/v1/xigang/box-p1", "not a parkgrid topic", id="too-short"),
        pytest.param("other/v1/xigang/box-p1/status", "not a parkgrid topic", id="other-root"),
        pytest.param("parkgrid/v2/xigang/box-p1/status", "unsupported uplink version", id="v2"),
        pytest.param("parkgrid/v1/xi+/box-p1/status", "site", id="wildcard-site"),
        pytest.param("parkgrid/v1/xigang/+/status", "box id", id="wildcard-box"),
        pytest.param("parkgrid/v1/xigang/_other/status", "box id", id="reserved-box"),
        pytest.param("parkgrid/v1/xigang/_central/event", "central publishes", id="central-event"),
        pytest.param("parkgrid/v1/xigang/box-p1/alert", "unknown topic kind", id="alert-kind"),
        pytest.param("parkgrid/v1/xigang/box-p1/central-status", "unknown", id="kind-name"),
        pytest.param("parkgrid/v1/xigang/box-p1/status/x", "no further level", id="status-id"),
        pytest.param("parkgrid/v1/xigang/box-p1/event/", "no further level", id="trailing-slash"),
        pytest.param("parkgrid/v1/xigang/box-p1/bay", "exactly one id", id="bay-no-id"),
        pytest.param("parkgrid/v1/xigang/box-p1/bay/a/b", "exactly one id", id="bay-two-ids"),
        pytest.param("parkgrid/v1/xigang/box-p1/bay/", "bay id", id="bay-empty-id"),
        pytest.param("parkgrid/v1/xigang/box-p1/lot/#", "lot id", id="lot-hash"),
        pytest.param("parkgrid/v1/xigang/box-p1/cmd/reboot", "unknown command", id="cmd-unknown"),
        pytest.param("parkgrid/v1/xigang/box-p1/reply/+", "unknown command", id="reply-plus"),
        pytest.param("/parkgrid/v1/xigang/box-p1/status", "not a parkgrid", id="leading-slash"),
    ],
)
def test_parse_topic_outside_scheme_raises(topic: str, reason: str) -> None:
    """Anything not in the v1 tree is a DecodeError naming the format and the topic."""
    with pytest.raises(DecodeError, match=reason) as info:
        parse_topic(topic)
    assert info.value.fmt == "uplink-v1"
    assert info.value.data == topic.encode()


@given(site=ids, box_id=box_ids, item=ids, kind=st.sampled_from(["bay", "lot", "zone", "sign"]))
def test_parse_topic_property_round_trip(site: str, box_id: str, item: str, kind: str) -> None:
    """Any valid ids give a topic that parses back to the same ids."""
    topics = Topics(site, box_id)
    topic = getattr(topics, kind)(item)
    parsed = parse_topic(topic)
    assert (parsed.site, parsed.box_id, parsed.kind.value, parsed.id) == (site, box_id, kind, item)


def test_central_filters_cover_every_box_published_kind() -> None:
    """Central's filters match exactly the box-published topics, and are valid filters."""
    filters = central_filters("xigang")
    assert "parkgrid/v1/xigang/+/event" in filters
    assert "parkgrid/v1/xigang/+/bay/+" in filters
    published = {s.kind for s in TOPIC_SPECS if s.direction.startswith("box")}
    covered = {
        parse_topic(f.replace("+", "rebirth" if "/reply/" in f else "b")).kind for f in filters
    }
    assert covered == published
    assert central_filters()[0] == "parkgrid/v1/+/+/status"


def test_box_filters_are_its_own_and_shared_lots() -> None:
    """A box subscribes to its own cmd and ack, every lot and box status, central's status."""
    assert T.box_filters() == (
        "parkgrid/v1/xigang/box-p1/cmd/+",
        "parkgrid/v1/xigang/box-p1/ack",
        "parkgrid/v1/xigang/+/lot/+",
        "parkgrid/v1/xigang/+/status",
        "parkgrid/v1/xigang/_central/status",
    )


def test_is_cmd_takes_only_this_boxs_commands() -> None:
    assert T.is_cmd(T.cmd("rebirth")) and T.is_cmd("parkgrid/v1/xigang/box-p1/cmd/bogus")
    assert not T.is_cmd(Topics("xigang", "box-p2").cmd("rebirth"))
    assert not T.is_cmd(T.ack) and not T.is_cmd(T.reply("rebirth"))


def test_shared_filter_prefixes_group() -> None:
    """Shared subscriptions use the MQTT 5 $share prefix; the group name is checked."""
    assert shared_filter("ingest", T.event) == "$share/ingest/parkgrid/v1/xigang/box-p1/event"
    with pytest.raises(EncodeError):
        shared_filter("in/gest", T.event)
