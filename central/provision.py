"""``parkgrid central provision-box BOX_ID``: a box's MQTT identity, its ACL, a starter config.

One box, one MQTT user named after its box id. Provisioning makes:

* a random password (``secrets``), and its Mosquitto password-file line, hashed the way
  ``mosquitto_passwd`` 2.x hashes (``$7$``: PBKDF2-HMAC-SHA512, 101 iterations, 12-byte
  salt, base64 salt and hash), so the broker host needs no extra tool;
* the box's Mosquitto ACL block: it may publish only under its own box id, and read what
  it subscribes to (``Topics.box_filters``): its own ``cmd/`` and ``ack``, every lot's
  public state, every box's status (a lot whose box is offline is not pointed at), and
  central's status::

      user box-p1
      topic write parkgrid/v1/{site}/box-p1/{status,event,bay/+,lot/+,zone/+,sign/+,reply/+}
      topic read  parkgrid/v1/{site}/box-p1/{cmd/+,ack}
      topic read  parkgrid/v1/{site}/+/lot/+
      topic read  parkgrid/v1/{site}/+/status
      topic read  parkgrid/v1/{site}/_central/status

  The ACL file opens with central's block (``topic readwrite #``): Mosquitto applies
  ``topic`` lines to the ``user`` above them, so no box block may come first;
* a starter ``edge.toml`` for the box's lots and stall zones, the site file's projection
  onto the box (``site_model.edge_config``), valid as it stands, with the bays listed in a
  ``bays.csv`` template for the technician to fill with sensor ids.

``--password-file`` / ``--acl-file`` update the broker's files in place: the box's line and
block are replaced (found by user name and by ``# >>> parkgrid box`` markers), others kept.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import grp
import hashlib
import hmac
import json
import os
import re
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

from central.ingest.broker_sys import SYS_TOPICS
from firmware_protocols.uplink import Topics, central_filters
from site_model.edge_config import DEFAULT_BOX_ETC, Deployment, edge_config_toml
from site_model.site import Site, SiteError, load_site

MOSQUITTO_ITERATIONS = 101  # what mosquitto_passwd 2.0 writes
MOSQUITTO_SALT_BYTES = 12
CENTRAL_USER = "central"
DEFAULT_MQTT_URL = "mqtts://broker:8883"  # a placeholder: no town's broker has this name


class ProvisionError(ValueError):
    """The box cannot be provisioned; ``box_id`` and ``reason`` say why."""

    def __init__(self, reason: str, *, box_id: str) -> None:
        self.reason = reason
        self.box_id = box_id
        super().__init__(f"box {box_id}: {reason}")


# --- Mosquitto password hashes ------------------------------------------------------------------


def mosquitto_hash(
    password: str, *, salt: bytes | None = None, iterations: int = MOSQUITTO_ITERATIONS
) -> str:
    """``$7$<iterations>$<salt b64>$<hash b64>``, as ``mosquitto_passwd`` writes it."""
    salt = secrets.token_bytes(MOSQUITTO_SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_mosquitto_hash(password: str, hashed: str) -> bool:
    """Whether ``password`` matches a ``$7$`` (or ``$6$``, SHA-512 salted) password hash."""
    parts = hashed.split("$")
    if len(parts) == 5 and parts[1] == "7":
        salt, want = base64.b64decode(parts[3]), base64.b64decode(parts[4])
        got = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(parts[2]))
        return hmac.compare_digest(got, want)
    if len(parts) == 4 and parts[1] == "6":
        salt, want = base64.b64decode(parts[2]), base64.b64decode(parts[3])
        return hmac.compare_digest(hashlib.sha512(password.encode() + salt).digest(), want)
    raise ValueError("not a mosquitto $6$ or $7$ password hash")


def new_password() -> str:
    """32 URL-safe characters (192 bits)."""
    return secrets.token_urlsafe(24)


def password_line(username: str, password: str) -> str:
    return f"{username}:{mosquitto_hash(password)}"


# --- ACL ---------------------------------------------------------------------------------------


def _marker(kind: str, name: str) -> tuple[str, str]:
    return f"# >>> parkgrid {kind} {name}", f"# <<< parkgrid {kind} {name}"


def central_acl(username: str = CENTRAL_USER) -> str:
    """Central reads and writes every parkgrid topic (``#`` does not match ``$SYS``) and
    reads the broker's drop counters (``central.ingest.broker_sys``), nothing else of
    ``$SYS``."""
    begin, end = _marker("central", username)
    sys_reads = [f"topic read {topic}" for topic in SYS_TOPICS]
    return "\n".join(
        [begin, f"user {username}", "topic readwrite #", *sys_reads, end, ""]
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Access:
    """What one MQTT user may do: publish to ``writes``, subscribe to ``reads`` (filters).
    Rendered for Mosquitto by ``box_acl`` and for the demo's embedded broker by
    ``simulators.embedded_broker``, so both brokers enforce the same lists."""

    user: str
    writes: tuple[str, ...]
    reads: tuple[str, ...]


def box_access(site_id: str, box_id: str) -> Access:
    """The box writes only under its own id, exactly the topics central reads from it
    (``central_filters`` for this box), and reads exactly what it subscribes to
    (``Topics.box_filters``): the topic helpers' lists, so the ACL cannot drift from them."""
    writes = central_filters(site_id, box_id=box_id)
    return Access(user=box_id, writes=writes, reads=Topics(site_id, box_id).box_filters())


def central_access(username: str = CENTRAL_USER) -> Access:
    return Access(user=username, writes=("#",), reads=("#",))


def box_acl(site_id: str, box_id: str) -> str:
    """The box's Mosquitto ACL block (see the module docstring)."""
    access = box_access(site_id, box_id)
    begin, end = _marker("box", box_id)
    lines = [begin, f"user {box_id}"]
    lines += [f"topic write {topic}" for topic in access.writes]
    lines += [f"topic read {topic_filter}" for topic_filter in access.reads]
    lines += [end, ""]
    return "\n".join(lines)


def upsert_acl(path: Path, *, box_block: str, box_id: str, central_user: str) -> None:
    """Put the box's block into the ACL file, replacing an older one; create the file
    (central's block first) if it does not exist."""
    text = path.read_text(encoding="utf-8") if path.exists() else central_acl(central_user)
    begin, end = _marker("box", box_id)
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _m: box_block, text)
    else:
        text = text.rstrip("\n") + "\n\n" + box_block
    _write_private(path, text, mode=0o640)


def upsert_password(path: Path, *, line: str) -> None:
    """Put ``user:hash`` into a Mosquitto password file, replacing that user's old line."""
    user = line.split(":", 1)[0]
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    kept = [existing for existing in lines if existing.split(":", 1)[0] != user]
    _write_private(path, "\n".join([*kept, line]) + "\n", mode=0o640)


def write_secret(path: Path, text: str) -> None:
    """A box's secret file (its MQTT password): 0600, replaced atomically."""
    _write_private(path, text, mode=0o600)


def _write_private(path: Path, text: str, *, mode: int) -> None:
    """Replace ``path`` atomically. An existing file keeps its mode, owner and group (the
    broker's files are root:mosquitto 0640); a new one gets ``mode``, and group
    ``mosquitto`` when we are root and that group exists, so the broker can read it."""
    uid = gid = -1
    try:
        old = path.stat()
        mode, uid, gid = old.st_mode & 0o777, old.st_uid, old.st_gid
    except FileNotFoundError:
        if os.geteuid() == 0:
            with contextlib.suppress(KeyError):
                gid = grp.getgrnam("mosquitto").gr_gid
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    if os.geteuid() == 0 and (uid, gid) != (-1, -1):
        os.chown(tmp, uid, gid)
    os.chmod(tmp, mode)
    tmp.replace(path)


# --- the starter box config ----------------------------------------------------------------------


def starter_edge_toml(
    site: Site,
    box_id: str,
    *,
    mqtt_url: str,
    box_etc: str = DEFAULT_BOX_ETC,
) -> str:
    """The box's config projected from the site file (``site_model.edge_config``, written
    by tomli-w), with comments saying what to fill in. The demo starts every box from the
    same projection, so the two cannot differ."""
    lots = site.lots_of_box(box_id)
    zones = site.zones_of_box(box_id)
    head = [
        f"# Starter config for box {box_id} of site {site.id}, made by",
        f"#   parkgrid central provision-box {box_id}",
        "# Fill in: the serial device (ls -l /dev/serial/by-id/), each bay's sensor (bays.csv,",
        "# then parkgrid edge import-bays: docs/field-guide.md), the signs.",
        "# Check it with: parkgrid edge check-config edge.toml ; then parkgrid edge doctor.",
    ]
    for lot_id in lots:
        bays = site.lots[lot_id].bay_ids(lot_id)
        span = f"{bays[0]} .. {bays[-1]}" if bays else "none"
        head += [
            f"# lot {lot_id}: {len(bays)} bays in the site file ({span}): put each bay's sensor",
            f"# id in bays.csv, then: parkgrid edge import-bays bays.csv --lot {lot_id} "
            f"--config {box_etc}/edge.toml",
        ]
    if zones:
        head += [
            f"# stall zones {', '.join(zones)}: class, trading hours and grace from the site "
            "file; add",
            "# each pitch's sensor as [zones.<zone>.bays.<bay>] sensor = ..., format = ...",
        ]
    example_lot = json.dumps(lots[0] if lots else "LOT", ensure_ascii=False)
    others = [lot_id for lot_id in site.lots if lot_id not in lots[:1]]
    example_fallback = (
        f'[{{ lot = {json.dumps(others[0], ensure_ascii=False)}, arrow = "right" }}]'
        if others
        else "[]  # no other lot in this site to send drivers to"
    )
    tail = [
        "",
        "# A guidance sign per lot entrance, for example (unit ids: parkgrid edge scan-signs):",
        "# [sign_buses.bus1]",
        '# transport = "rtu"',
        '# device = "/dev/serial/by-id/CHANGE-ME-SIGNS"',
        "#",
        "# [sign_buses.bus1.signs.entrance]",
        "# unit = 1",
        '# profile = "parkgrid-guidance"',
        "# lot: the lot it counts; arrow: the way to that lot's entrance from the sign;",
        "# fallback: where to send drivers when it is full, nearest first (other lots).",
        f"# lot = {example_lot}",
        '# arrow = "left"',
        f"# fallback = {example_fallback}",
        "",
    ]
    body = edge_config_toml(site, box_id, Deployment(mqtt_url=mqtt_url, box_etc=box_etc))
    return "\n".join(head) + "\n" + body + "\n".join(tail)


def bays_csv_template(site: Site, box_id: str) -> str:
    """``lot,bay,sensor,format`` with the box's bays and empty sensor columns."""
    rows = ["lot,bay,sensor,format"]
    for lot_id in site.lots_of_box(box_id):
        rows += [f"{lot_id},{bay},," for bay in site.lots[lot_id].bay_ids(lot_id)]
    return "\n".join(rows) + "\n"


# --- provisioning ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Provisioned:
    box_id: str
    username: str
    password: str
    password_line: str
    acl: str
    edge_toml: str
    bays_csv: str


def provision_box(
    site: Site,
    box_id: str,
    *,
    mqtt_url: str,
    box_etc: str = DEFAULT_BOX_ETC,
    password: str | None = None,
) -> Provisioned:
    """Everything a new box needs; raises ProvisionError for a box the site lacks."""
    if box_id not in site.boxes:
        known = ", ".join(sorted(site.boxes)) or "none"
        raise ProvisionError(f"not in the site file's [boxes] (known: {known})", box_id=box_id)
    if not re.fullmatch(r"mqtts?://[^/:\s]+(:\d{1,5})?/?", mqtt_url):
        raise ProvisionError(f"{mqtt_url!r} is not an mqtt:// or mqtts:// URL", box_id=box_id)
    secret = password or new_password()
    return Provisioned(
        box_id=box_id,
        username=box_id,
        password=secret,
        password_line=password_line(box_id, secret),
        acl=box_acl(site.id, box_id),
        edge_toml=starter_edge_toml(site, box_id, mqtt_url=mqtt_url, box_etc=box_etc),
        bays_csv=bays_csv_template(site, box_id),
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("box_id", help="the box id, as in the site file's [boxes]")
    parser.add_argument("--site", type=Path, required=True, help="the site TOML file")
    parser.add_argument(
        "--mqtt-url",
        help="what the box connects to: mqtts://NAME:8883, NAME as in the broker's certificate",
    )
    parser.add_argument(
        "--out", type=Path, help="write edge.toml, mqtt-password, bays.csv, ... into this dir"
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing edge.toml")
    parser.add_argument(
        "--password-file", type=Path, help="the broker's Mosquitto password file to update"
    )
    parser.add_argument("--acl-file", type=Path, help="the broker's Mosquitto ACL file to update")
    parser.add_argument("--central-user", default=CENTRAL_USER, help="central's MQTT user")
    parser.add_argument(
        "--box-etc", default=DEFAULT_BOX_ETC, help="where the files go on the box (/etc/parkgrid)"
    )
    parser.add_argument(
        "--central-token",
        action="store_true",
        help="also issue the box's token for central's HTTP API (role box: it may download "
        "the town's release bundles, nothing else); needs --out and central's --database-url",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("PARKGRID_DATABASE_URL", "sqlite:///parkgrid-central.db"),
        help="central's store, for --central-token (env PARKGRID_DATABASE_URL)",
    )
    parser.add_argument("--token-days", type=int, default=365, help="the token's lifetime")


def _cannot_write(path: Path, *, folder: bool) -> str | None:
    """Why ``path`` (a file to update, or a folder to fill) cannot be written, or None."""
    if path.exists():
        if folder != path.is_dir():
            return "is not a folder" if folder else "is a folder, not a file"
        if not os.access(path, os.W_OK | (os.X_OK if folder else os.R_OK)):
            return "Permission denied"
        return None
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        if not folder:
            break  # a broker file's folder must exist: a missing one is a typo
        parent = parent.parent
    if not parent.exists():
        return f"no folder {parent}: No such file or directory"
    if not parent.is_dir():
        return f"{parent} is not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot create it in {parent}: Permission denied"
    return None


def run(args: argparse.Namespace) -> int:
    # every place to write is checked first: a wrong path must not leave the box's files
    # with a new password the broker never got
    for option, path, folder in (
        ("--out", args.out, True),
        ("--password-file", args.password_file, False),
        ("--acl-file", args.acl_file, False),
    ):
        if path is not None and (why := _cannot_write(path, folder=folder)):
            print(f"provision-box: {option} {path}: {why}; nothing written", file=sys.stderr)
            return 2
    if args.central_token and args.out is None:
        print("provision-box: --central-token needs --out (the token is shown to no one); "
              "nothing written", file=sys.stderr)  # fmt: skip
        return 2
    mqtt_url = args.mqtt_url
    if mqtt_url is None:
        mqtt_url = DEFAULT_MQTT_URL
        print(f"provision-box: no --mqtt-url; the starter edge.toml says {mqtt_url}: "
              "change [mqtt] url to the broker's name before the box starts",
              file=sys.stderr)  # fmt: skip
    try:
        site = load_site(args.site)
        done = provision_box(site, args.box_id, mqtt_url=mqtt_url, box_etc=args.box_etc)
    except SiteError as exc:
        print(exc, file=sys.stderr)
        return 2
    except ProvisionError as exc:
        print(f"provision-box: {exc}", file=sys.stderr)
        return 2
    if args.out is not None:
        out: Path = args.out
        out.mkdir(parents=True, exist_ok=True)
        if (out / "edge.toml").exists() and not args.force:
            print(f"provision-box: {out / 'edge.toml'} exists; --force to replace it",
                  file=sys.stderr)  # fmt: skip
            return 2
        (out / "edge.toml").write_text(done.edge_toml, encoding="utf-8")
        (out / "bays.csv").write_text(done.bays_csv, encoding="utf-8")
        _write_private(out / "mqtt-password", done.password + "\n", mode=0o600)
        _write_private(out / "mosquitto-passwd.line", done.password_line + "\n", mode=0o600)
        (out / "mosquitto-acl.conf").write_text(done.acl, encoding="utf-8")
        print(f"box {done.box_id}: wrote edge.toml, bays.csv, mqtt-password (0600), "
              f"mosquitto-passwd.line and mosquitto-acl.conf to {out}")  # fmt: skip
        if args.central_token:
            _write_private(out / "central-token", _box_token(args, done.box_id) + "\n", mode=0o600)
            print(f"box {done.box_id}: wrote central-token (0600, role box) to {out}")
    else:
        print(f"# MQTT user {done.username}, password (shown once, keep it secret):")
        print(done.password)
        print("\n# Mosquitto password file line:")
        print(done.password_line)
        print("\n# Mosquitto ACL block:")
        print(done.acl)
        print("# edge.toml:")
        print(done.edge_toml)
    if args.password_file is not None:
        upsert_password(args.password_file, line=done.password_line)
        print(f"updated {args.password_file} (reload mosquitto: systemctl reload mosquitto)")
    if args.acl_file is not None:
        upsert_acl(
            args.acl_file, box_block=done.acl, box_id=done.box_id, central_user=args.central_user
        )
        print(f"updated {args.acl_file}")
    return 0


def _box_token(args: argparse.Namespace, box_id: str) -> str:
    """A new central token of role ``box`` named after the box (issued and audited)."""
    import getpass

    from central.auth.models import Role
    from central.auth.service import issue_token
    from central.db.engine import make_engine
    from central.db.migrate import upgrade

    engine = make_engine(args.database_url)
    upgrade(engine)
    token, _ = issue_token(engine, name=box_id, role=Role.BOX, ttl_s=args.token_days * 86400.0,
                           actor=f"cli:{getpass.getuser()}")  # fmt: skip
    engine.dispose()
    return token
