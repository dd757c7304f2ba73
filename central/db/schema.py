"""The central schema, SQLAlchemy Core: one ``metadata`` for SQLite and PostgreSQL.

Times are UTC epoch seconds in ``Float`` columns (``*_at``, ``ts``, ``since``): the same type
and the same arithmetic on both engines, which keeps the history queries (bucketing by a
step) free of engine-specific date functions. Live state (boxes, lots, bays, zones, signs)
is one row per thing, overwritten; history is the append-only ``events`` table, unique on
``(box_id, seq, ts)`` (partitioned by month on PostgreSQL: ``central.history.partitions``),
which is what makes at-least-once delivery exactly-once.

Changing the schema: edit this module, then add an Alembic revision under
``central/db/migrations/versions/`` (``tests/central/test_store.py`` fails while the two
disagree).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

ID = 64  # the uplink id length

boxes = Table(
    "boxes",
    metadata,
    Column("box_id", String(ID), primary_key=True),
    Column("name", String(200)),
    Column("in_site", Boolean, nullable=False, default=True),
    Column("online", Boolean, nullable=False, default=False),
    Column("seen", Boolean, nullable=False, default=False),
    Column("boot_id", String(36)),
    Column("offline_reason", String(32)),
    Column("status_ts", Float),
    Column("status_changed_at", Float),
    Column("last_seen_at", Float),
    Column("software_version", String(500)),
    Column("config_hash", String(500)),
    Column("sensor_count", Integer),
    Column("status_json", Text),
)

lots = Table(
    "lots",
    metadata,
    Column("lot_id", String(ID), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("box_id", String(ID), nullable=False, index=True),
    Column("capacity", Integer, nullable=False),
    Column("lat", Float),
    Column("lon", Float),
    Column("address", String(500)),
    # The box's last LotState; null until one arrives.
    Column("free", Integer),
    Column("occupied", Integer),
    Column("unknown", Integer),
    Column("closed", Integer),
    Column("reported_capacity", Integer),
    Column("status", String(32)),
    Column("trend", String(16)),
    Column("state_ts", Float),
    Column("updated_at", Float),
)

bays = Table(
    "bays",
    metadata,
    Column("bay_id", String(ID), primary_key=True),
    Column("lot_id", String(ID), index=True),
    Column("zone_id", String(ID), index=True),
    Column("box_id", String(ID), nullable=False),
    Column("state", String(16)),
    Column("since", Float),
    Column("sensor_id", String(ID)),
    Column("sensor_json", Text),
    Column("sensor_flags", String(200)),
    Column("state_ts", Float),
    Column("updated_at", Float),
)

zones = Table(
    "zones",
    metadata,
    Column("zone_id", String(ID), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("zone_class", String(16), nullable=False),
    Column("box_id", String(ID), nullable=False, index=True),
    Column("lat", Float),
    Column("lon", Float),
    Column("state", String(16)),
    Column("occupied", Integer),
    Column("schedule_version", Integer),
    Column("window_start", Float),
    Column("window_end", Float),
    Column("next_transition", Float),
    Column("state_ts", Float),
    Column("updated_at", Float),
)

signs = Table(
    "signs",
    metadata,
    Column("sign_id", String(ID), primary_key=True),
    Column("box_id", String(ID), nullable=False, index=True),
    Column("up", Boolean),
    Column("state_json", Text, nullable=False),
    Column("state_ts", Float),
    Column("updated_at", Float),
)

# History: every event of every box, once.
events = Table(
    "events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("box_id", String(ID), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("boot_id", String(36), nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("kind", String(32), nullable=False),
    # When it happened: the sensor time of a bay change, else the envelope's ts.
    Column("ts", Float, nullable=False),
    Column("received_at", Float, nullable=False),
    Column("historical", Boolean, nullable=False),
    Column("lot_id", String(ID)),
    Column("zone_id", String(ID)),
    Column("bay_id", String(ID)),
    Column("to_state", String(16)),
    Column("payload", Text, nullable=False),
    # A bay change: the bay's state before it in its chain (central.history.chain), so a
    # part of a minute is read from raw events without the chain.
    Column("prev_state", String(16)),
    # A repeat is the same (box, seq, ts): PostgreSQL's partitions by month want the
    # partition key in every unique key; a seq held by another event is refused before the
    # insert (central.ingest.events).
    UniqueConstraint("box_id", "seq", "ts", name="uq_events_box_seq"),
)
# Lot history (a lot's changes in a time range) and a bay's state at a time.
Index("ix_events_lot_ts", events.c.lot_id, events.c.ts)
Index("ix_events_bay_ts_seq", events.c.bay_id, events.c.ts, events.c.seq)
Index("ix_events_kind_ts", events.c.kind, events.c.ts)


# History rollups (central.history), kept for good while raw events age out. A lot's
# counts change by (free, occupied, unknown, closed) in the minute (hour) key k: the bay
# changes with (k - 1) * 60 < ts <= k * 60.
def _count_changes(name: str, key: str) -> Table:
    return Table(
        name,
        metadata,
        Column("lot_id", String(ID), primary_key=True),
        Column(key, BigInteger, primary_key=True),
        Column("free", Integer, nullable=False),
        Column("occupied", Integer, nullable=False),
        Column("unknown", Integer, nullable=False),
        Column("closed", Integer, nullable=False),
    )


lot_minutes = _count_changes("lot_minutes", "minute")
lot_hours = _count_changes("lot_hours", "hour")

# Each bay's stays (a run of occupied ended by another state), for dwell times.
bay_stays = Table(
    "bay_stays",
    metadata,
    Column("bay_id", String(ID), primary_key=True),
    Column("ended", Float, primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("lot_id", String(ID)),
    Column("began", Float, nullable=False),
)
Index("ix_bay_stays_lot_ended", bay_stays.c.lot_id, bay_stays.c.ended)

# Where each bay's chain stands: its last change (the rollups' next change follows it).
bay_tips = Table(
    "bay_tips",
    metadata,
    Column("bay_id", String(ID), primary_key=True),
    Column("lot_id", String(ID)),
    Column("ts", Float),
    Column("seq", BigInteger),
    Column("state", String(16)),
    Column("run_began", Float),
)

# Named marks of the history: "raw_from" (raw events before it were dropped by retention).
history_marks = Table(
    "history_marks",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", Float, nullable=False),
)

# Seq ranges a box reported dropped (events_dropped): settled for the watermark.
dropped_ranges = Table(
    "dropped_ranges",
    metadata,
    Column("box_id", String(ID), primary_key=True),
    Column("first_seq", BigInteger, primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("reported_at", Float, nullable=False),
)

watermarks = Table(
    "watermarks",
    metadata,
    Column("box_id", String(ID), primary_key=True),
    Column("acked_seq", BigInteger, nullable=False),
    Column("updated_at", Float, nullable=False),
    # The seq line whose events acked_seq counts (uplink ``line``/``line_from``); NULL for
    # a legacy box, whose events name no line (central/ingest/lines.py).
    Column("line", String(36), nullable=True),
    Column("line_from", BigInteger, nullable=True),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("box_id", String(ID), nullable=False),
    Column("alert_id", String(ID), nullable=False),
    Column("alert_type", String(32), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("step", Integer, nullable=False),
    Column("since", Float, nullable=False),
    Column("message", Text),
    Column("lot_id", String(ID)),
    Column("zone_id", String(ID)),
    Column("bay_id", String(ID)),
    Column("sign_id", String(ID)),
    Column("sensor_id", String(ID)),
    # raised -> acknowledged -> resolved; the box may resolve at any point.
    Column("state", String(16), nullable=False),
    Column("raised_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("acknowledged_by", String(200)),
    Column("acknowledged_at", Float),
    Column("resolved_by", String(200)),
    Column("resolved_at", Float),
    UniqueConstraint("box_id", "alert_id", name="uq_alerts_box_alert"),
)
Index("ix_alerts_state_raised", alerts.c.state, alerts.c.raised_at)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("topic", Text, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("payload_size", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("box_id", String(ID)),
    Column("received_at", Float, nullable=False, index=True),
)

# Disagreements between what boxes publish and the site file; one row per subject.
site_problems = Table(
    "site_problems",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("box_id", String(ID), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("message", Text, nullable=False),
    Column("first_seen_at", Float, nullable=False),
    Column("last_seen_at", Float, nullable=False),
    Column("count", Integer, nullable=False),
    UniqueConstraint("box_id", "subject", name="uq_site_problems_box_subject"),
)

commands = Table(
    "commands",
    metadata,
    Column("command_id", String(36), primary_key=True),
    Column("box_id", String(ID), nullable=False, index=True),
    Column("name", String(32), nullable=False),
    Column("payload", Text, nullable=False),
    Column("issued_by", String(200), nullable=False),
    Column("issued_at", Float, nullable=False),
    Column("expires_at", Float),
    Column("reply_ok", Boolean),
    Column("reply_error", Text),
    Column("reply_at", Float),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(100), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),
    Column("role", String(16), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
    Column("town", String(ID)),  # a county's town this user belongs to; NULL: county-wide
)

tokens = Table(
    "tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE")),
    Column("name", String(100), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False, index=True),
    Column("town", String(ID)),  # the town it acts in (a user's token: the user's); NULL: all
)

# Staged rollouts of a release to a town's boxes (central/fleet/rollout_*.py, docs/fleet.md).
rollouts = Table(
    "rollouts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("town", String(ID), nullable=False),
    Column("version", String(64), nullable=False),
    Column("sha256", String(71), nullable=False),
    Column("kind", String(16), nullable=False),  # rollout | rollback
    Column("rollback_of", Integer),
    Column("state", String(16), nullable=False, index=True),  # running|halted|done|rolled_back
    Column("wave", Integer, nullable=False),
    Column("canary", Integer, nullable=False),
    Column("share", Integer, nullable=False),
    Column("max_failures", Integer, nullable=False),
    Column("failure_base", Integer, nullable=False),
    Column("confirm_timeout_s", Float, nullable=False),
    Column("trial_window_s", Float),  # sent in each install; NULL: the box's default
    Column("window", String(200), nullable=False),
    Column("reason", Text),
    Column("created_by", String(200), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# Each box of a rollout: its wave, state, the install command sent and how it ended.
rollout_boxes = Table(
    "rollout_boxes",
    metadata,
    Column("rollout_id", Integer, primary_key=True),
    Column("box_id", String(ID), primary_key=True),
    Column("wave", Integer, nullable=False),
    Column("state", String(24), nullable=False),
    Column("command_id", String(36)),
    Column("boot_id", String(36)),  # the box's boot when the command went out
    Column("sent_at", Float),
    Column("failure", String(16)),  # refused | rolled_back | timeout
    Column("reason", Text),
    Column("updated_at", Float, nullable=False),
)

# Who did what: every write through the API or the CLI.
audit = Table(
    "audit",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("at", Float, nullable=False, index=True),
    Column("actor", String(200), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(200)),
    Column("detail", Text),
)

# --- Captures, pictures, the ledger, permits, cases (docs/ledger.md) -----------------------

# One row per camera event; a repeat (same camera, same event id) is stored once.
captures = Table(
    "captures",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("camera_id", String(ID), nullable=False),
    Column("event_id", String(128), nullable=False),
    Column("source", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("captured_at", Float, nullable=False),
    Column("received_at", Float, nullable=False),
    Column("plate", String(32), nullable=False),
    Column("plate_raw", String(64), nullable=False),
    Column("plate_readable", Boolean, nullable=False),
    Column("plate_color", String(16)),
    Column("vehicle_class", String(16), nullable=False),
    Column("ga_plate_type", String(2)),
    # "segment:R1", "lot:P1", "zone:S1", "entry:E1": what the rules group captures by.
    Column("place", String(100), nullable=False),
    Column("bay_id", String(ID)),
    Column("confidence", Float),
    Column("pictures", Text, nullable=False),  # JSON [{sha256, name, kind, content_type}]
    # The time the camera stated, and how far it was from the receipt (camera - central).
    Column("camera_time", Float),
    Column("clock_skew_s", Float),
    # "camera_clock": too far from its receipt; decides nothing until a person confirms.
    Column("held", String(16)),
    Column("unmapped", Text),  # JSON [[field, raw value]]: enumeration values no table knows
    UniqueConstraint("camera_id", "event_id", name="uq_captures_camera_event"),
)
Index("ix_captures_plate_place_at", captures.c.plate, captures.c.place, captures.c.captured_at)
Index("ix_captures_at", captures.c.captured_at)

# Content-addressed pictures: the bytes live in the picture store, named by their SHA-256.
pictures = Table(
    "pictures",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("size", Integer, nullable=False),
    Column("content_type", String(100), nullable=False),
    Column("stored_at", Float, nullable=False),
)

# Which cameras gave central each picture (an upload, or a capture's own part): a county
# town's view serves a picture one of its cameras gave, and a camera may name by hash only
# a picture its town gave (docs/ledger.md, "Pictures").
picture_cameras = Table(
    "picture_cameras",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("camera_id", String(ID), primary_key=True),
)

# The violation ledger: append-only, hash-chained (central/ledger/chain.py). A status
# change is a new entry whose ref_seq names the first; rows are never updated.
ledger = Table(
    "ledger",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", Float, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("ref_seq", BigInteger),
    Column("rule_id", String(32)),
    Column("rule_version", Integer),
    Column("plate", String(32)),
    Column("plate_color", String(16)),
    Column("vehicle_class", String(16)),
    Column("ga_plate_type", String(2)),
    Column("place", String(100)),
    Column("grid_id", String(ID)),
    Column("evidence", Text, nullable=False),
    Column("fine_cny", Integer),
    Column("points", Integer),
    Column("status", String(32), nullable=False),
    Column("reason", Text),
    Column("actor", String(200)),
    Column("dedup_key", String(200), unique=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)
Index("ix_ledger_ref_seq", ledger.c.ref_seq)
Index("ix_ledger_at", ledger.c.at)

# The ledger's head: one row (id 1), the newest entry's seq and hash, moved in the same
# transaction as every append. Deleting the newest entries then leaves a chain that ends
# short of the head, which verify reports (docs/ledger.md, "The head").
ledger_head = Table(
    "ledger_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("at", Float, nullable=False),
)

# Permits issued through the API (the site file's [[permits]] count as well).
permits = Table(
    "permits",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("plate", String(32), nullable=False, index=True),
    Column("area", String(64), nullable=False),
    Column("valid_from", Float, nullable=False),
    Column("valid_until", Float, nullable=False),
    Column("reason", Text, nullable=False),
    Column("issued_by", String(200), nullable=False),
    Column("issued_at", Float, nullable=False),
    Column("revoked_at", Float),
    Column("town", String(ID)),  # the county town it was issued for; NULL: every town
)

# Cases routed to the grids: a closed loop (central/cases/workflow.py); every step is a
# case_history row.
cases = Table(
    "cases",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("source_ref", String(200), nullable=False, unique=True),
    Column("grid_id", String(ID)),
    Column("place", String(100)),
    Column("title", Text, nullable=False),
    Column("detail", Text),
    Column("ledger_seq", BigInteger),
    Column("state", String(16), nullable=False),
    Column("registered_at", Float, nullable=False),
    Column("dispatched_at", Float),
    Column("acknowledged_at", Float),
    Column("handled_at", Float),
    Column("verified_at", Float),
    Column("closed_at", Float),
    Column("ack_due_at", Float, nullable=False),
    Column("close_due_at", Float, nullable=False),
    Column("escalation", Integer, nullable=False, default=0),
    Column("reopened", Integer, nullable=False, default=0),
    Column("updated_at", Float, nullable=False),
)
Index("ix_cases_grid_registered", cases.c.grid_id, cases.c.registered_at)
Index("ix_cases_state", cases.c.state)

case_history = Table(
    "case_history",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("case_id", Integer, ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
    Column("at", Float, nullable=False),
    Column("action", String(32), nullable=False),
    Column("from_state", String(16)),
    Column("to_state", String(16), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("note", Text),
)
Index("ix_case_history_case", case_history.c.case_id, case_history.c.at)
