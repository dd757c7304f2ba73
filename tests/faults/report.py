"""Render test-artifacts/reliability.json as the Markdown tables of docs/reliability.md.

``python -m tests.faults.report [--json PATH] [--out docs/reliability.md]``; without
``--out`` the tables go to standard output. Figures are only ever what a run wrote.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from tests.faults.rig import RELIABILITY_JSON

HEADER = """# Reliability: faults, bad input and hostile clients

The figures below are written by the tests themselves (`tests/faults/`, `tests/badinput/`,
`tests/security/`) to `test-artifacts/reliability.json` and rendered by
`python -m tests.faults.report --out docs/reliability.md`. `make test` runs the scenarios
short; `make soak` runs the same ones longer and faster and prints these tables. Nothing
here is typed by hand.

How each scenario runs, and what "lost" and "duplicated" mean, is in the last section.
"""

EXPLAIN = """
## How to read the fault table

- **events sent**: the seqs the boxes committed to their outboxes (each box's `last_seq`);
  **stored**: how many of those central's `events` table holds; **lost**: seqs 1..n missing
  at central; **duplicated**: rows with a repeated `(box, seq)` or `event_id`. Every
  scenario also checks that each bay's live state at central equals the simulator's truth.
- **recover**: seconds from the end of the fault (broker, central or box back; link up;
  space freed) until central's watermark covers every event the boxes had committed at
  that moment.
- Scenarios 1-5 and 8 run real processes (`mosquitto`, `parkgrid central serve` on SQLite,
  `parkgrid edge run` per box) on loopback; 4 runs the box in a network namespace behind a
  veth pair; 8 puts central's database on a small tmpfs and fills it. 6 and 7 run the box in
  the test process (to read its line and sign-bus counters) against a real central.
- Where a scenario kills the box (3, 5), a frame the dying process had read but not acted
  on is gone, as a radio frame lost in the air is: the guarantee is for events the box had
  *committed*, and the bays come right from the sensors' next heartbeats.
"""

NOT_COVERED = """
## Not covered here yet

- Schemathesis checks every response's status is not 5xx and its body, content type and
  headers match what the operation declares for that status; it does not require every
  4xx a route can answer (401, 403, 404, 409, 413, 429, 503) to be listed in the document
  (`status_code_conformance` is off), and it does not run stateful (link-following) tests.
  The SSE stream is left out of it (an open stream never ends); tests/central covers it.
"""

HOSTILE_NOT_COVERED = """
### Hostile people: still not covered

- Many addresses at once: the login back-off and the connection caps count per client
  address, so a botnet (or a block of IPv6 addresses, each its own key) gets
  `login_max_failures` guesses per user name, no more, but can keep the one password-check
  slot busy: real users' logins then wait and get 503 after `PASSWORD_CHECK_WAIT_S` (the
  rest of the API keeps answering: "login spray from many addresses"). A reverse proxy's
  `limit_req`/`limit_conn` (`deploy/nginx/`) and the network are the answer; no test drives
  thousands of addresses.
- A locked-out user: the per-user-name back-off also holds back the real user while a
  guesser keeps it going (at most 5 min per attempt); there is no second factor and no
  alert to an admin on a burst of failed logins (the `login refused` log line and
  `/metrics` only).
- `?access_token=` is accepted on every route, though only the stream (EventSource) and
  cameras that cannot set a header need it: a token in a URL can end up in a proxy's log
  or a browser's history.
- A stream client that stops reading keeps its connection until TCP gives up: its queue
  is bounded and it receives nothing, but its end (logout, expiry) is only sent once the
  connection can be written to again. A revocation made on another central instance
  reaches open streams here within the token cache's 5 s.
- TLS and the proxy's limits in front of central are the deployment's (`deploy/nginx/`,
  checked with `nginx -t`); no test runs central behind them.
- A box's birth says how many events its outbox holds (`cap_bytes`) and central believes
  it: with stolen box credentials, a birth claiming a huge outbox plus a drop report can
  still move that box's watermark past its real events (the box then refuses every ack, so
  nothing is deleted, but it is never acked again). Central should take the size from
  provisioning.
- Anyone with a box's credentials can send that box's future seqs first: the real events
  are then flagged as replays and kept in the (bounded) quarantine, not stored. Only signed
  events would close this.
- A box can create sign rows for made-up sign ids without limit; zone counts are not
  bounded by the zone's bays (not tried).
- `/metrics` answers without a token (box ids, last-seen times, site-problem counts).
- A box's credentials can still start a made-up seq line below the bound central keeps
  (2^63-1 - 2 x 2^40): the watermark then moves to it and the real line is held back until
  the box renumbers above it on central's next ack (one round trip; at most once the forged
  line sits at the bound). The renumbering was tested on a real outbox
  (tests/central/test_claims.py), not end to end with a running box under this attack.
"""


SOAK_SECTION = RELIABILITY_JSON.with_name("reliability-soak-section.md")

FAULT_COLUMNS = ("events sent", "stored", "lost", "duplicated", "recover (s)", "notes")
NOTE_KEYS = (
    "down_s",
    "cut_s",
    "keepalive_s",
    "held_at_box",
    "held_at_boxes",
    "kills",
    "integrity_check",
    "converge_after_heartbeat_s",
    "corrupted_frames",
    "garbage_bytes",
    "false_bay_changes",
    "failed_requests_before_down",
    "alert_at_central_after_s",
    "right_count_after_back_s",
    "alert_resolved_after_back_s",
    "full_for_s",
)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def when_run(data: dict[str, Any]) -> str:
    stamps = [
        row.get("recorded_at", 0)
        for section in SECTION_OF.values()
        for row in data.get(section, {}).values()
    ]
    return dt.datetime.fromtimestamp(max(stamps or [0]), dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def tables(
    data: dict[str, Any], level: str = "##", kept: dict[str, str] | None = None
) -> list[str]:
    """The fault, bad-input, hostile-client and hostile-people tables (and known gaps).

    ``kept``: sections of the page before, by title, used as they were for a section this
    run has no rows for (a run of some of the tests keeps the others' figures).
    """
    out: list[str] = []
    faults = data.get("faults", {})
    if not faults:
        out += _kept(kept, "Fault scenarios")
    else:
        out.append(f"{level} Fault scenarios\n")
        out.append("| scenario | " + " | ".join(FAULT_COLUMNS) + " |")
        out.append("|---" * (len(FAULT_COLUMNS) + 1) + "|")
        for name in sorted(faults):
            row = faults[name]
            notes = ", ".join(f"{k} {_cell(row[k])}" for k in NOTE_KEYS if k in row)
            cells = [
                row.get("events_sent"),
                row.get("events_stored"),
                row.get("lost"),
                row.get("duplicated"),
                row.get("recover_s"),
                notes,
            ]
            out.append(f"| {name} | " + " | ".join(_cell(c) for c in cells) + " |")
        out.append("")
    for section, title in (("badinput", "Bad input"), ("security", "Hostile clients")):
        rows = data.get(section, {})
        if not rows:
            out += _kept(kept, title)
            continue
        out.append(f"{level} {title}\n")
        out.append("| check | cases tried | refused as expected | how refused |")
        out.append("|---|---|---|---|")
        for name in sorted(rows):
            row = rows[name]
            out.append(
                f"| {name} | {_cell(row.get('cases'))} | {_cell(row.get('refused'))} "
                f"| {_cell(row.get('how'))} |"
            )
        out.append("")
    out += hostile_table(data.get("hostile", {}), level) or _kept(kept, HOSTILE_TITLE)
    gaps = known_gaps(data)
    if gaps:
        out.append(f"{level} Known gaps (each held by a strict xfail test)\n")
        out += [f"- {gap}" for gap in gaps]
        out.append("")
    return out


def render(data: dict[str, Any], soak: str | None = None, previous: str | None = None) -> str:
    """The whole page; ``soak`` is the last ``make soak``'s section (soak.py writes it).

    ``previous``: the page before, whose sections this run has no rows for are kept.
    """
    kept = kept_sections(previous) if previous else {}
    out = [HEADER]
    out.append(f"Last run: `{data.get('mode', 'test')}` mode, {when_run(data)}.")
    reused = [title for title in kept if not data.get(SECTION_OF[title])]
    if reused:
        out.append(f"Kept from the page before (not re-run this time): {', '.join(reused)}.")
    out.append("")
    out += tables(data, kept=kept)
    if soak:
        out.append(soak)
    out.append(NOT_COVERED)
    out.append(HOSTILE_NOT_COVERED)
    out.append(EXPLAIN)
    return "\n".join(out)


SOAK_HEADING = "## Soak: `make soak`"
HOSTILE_TITLE = "Hostile people"
# Page section title -> the reliability.json section it is rendered from.
SECTION_OF = {
    "Fault scenarios": "faults",
    "Bad input": "badinput",
    "Hostile clients": "security",
    HOSTILE_TITLE: "hostile",
}


def kept_sections(page: str) -> dict[str, str]:
    """The top-level table sections of an earlier page, by title, as they were written."""
    kept = {}
    for title in SECTION_OF:
        start = page.find(f"\n## {title}\n")
        if start < 0:
            continue
        end = page.find("\n## ", start + 1)
        kept[title] = page[start + 1 : end if end >= 0 else len(page)].rstrip() + "\n"
    return kept


def _kept(kept: dict[str, str] | None, title: str) -> list[str]:
    return [kept[title]] if kept and title in kept else []


def _text(value: Any) -> str:
    """A table cell: pipes escaped, one line."""
    return _cell(value).replace("|", "\\|").replace("\n", " ")


def hostile_table(rows: dict[str, Any], level: str = "##") -> list[str]:
    """The "Hostile people" table: one row per attack an issue-14 test made and recorded."""
    if not rows:
        return []
    out = [
        f"{level} {HOSTILE_TITLE}\n",
        "What people who mean harm tried against a running system, each by a test that "
        'records its row (`record("hostile", name, {attack, tried, refused, notes})`): '
        "**tried** how many attempts, **refused** how many got nothing (refused, cut off or "
        "ended as they should be).\n",
        "| attack | what was tried | tried | refused | notes |",
        "|---|---|---|---|---|",
    ]
    for name in sorted(rows):
        row = rows[name]
        cells = [name, row.get("attack"), row.get("tried"), row.get("refused"), row.get("notes")]
        out.append("| " + " | ".join(_text(c) for c in cells) + " |")
    out.append("")
    return out


def kept_soak_section(page: str) -> str | None:
    """The soak section of an earlier page, so re-rendering the tests' tables keeps it."""
    start = page.find(SOAK_HEADING)
    if start < 0:
        return None
    end = page.find("\n## Not covered", start)
    return page[start : end if end >= 0 else len(page)].rstrip() + "\n"


def soak_section(
    data: dict[str, Any], *, factor: float, command: str, full: float, note: str | None = None
) -> str:
    """The soak's own heading (command, date, how long it ran against the full soak) and tables."""
    if factor >= full:
        length = f"the full soak (factor {factor:g})"
    else:
        length = (
            f"SHORTENED: factor {factor:g}, not the full soak's {full:g} (load phases "
            f"{factor:g}x the test's length instead of {full:g}x)"
        )
    out = [
        SOAK_HEADING + "\n",
        f"`{command}` on {when_run(data)}: {length}. The same tests at higher rates and for "
        "longer; each row from that run.\n",
    ]
    if note:
        out.append(f"{note}\n")
    out += tables(data, level="###")
    return "\n".join(out)


def bad_rows(data: dict[str, Any]) -> list[str]:
    """Fault rows that break the promise: anything lost or duplicated."""
    return [
        name
        for name, row in data.get("faults", {}).items()
        if row.get("lost") or row.get("duplicated")
    ]


def known_gaps(data: dict[str, Any]) -> list[str]:
    """Bad-input, security and hostile rows where not every case was refused as it should be.

    Each is a defect held by a strict xfail test naming it, so it is shown, not hidden.
    """
    gaps = [
        f"{name}: {row.get('refused')} of {row.get('cases')}"
        for section in ("badinput", "security")
        for name, row in data.get(section, {}).items()
        if row.get("cases") != row.get("refused")
    ]
    return gaps + [
        f"{name}: {row.get('refused')} of {row.get('tried')} refused"
        for name, row in data.get("hostile", {}).items()
        # a count of attempts that got something; a text (a bound held) is the row's figure
        if isinstance(row.get("refused"), int) and row.get("tried") != row.get("refused")
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path, default=RELIABILITY_JSON)
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--soak",
        type=Path,
        default=SOAK_SECTION,
        help="the last make soak's section to include (default: %(default)s, if present)",
    )
    args = parser.parse_args(argv)
    data = json.loads(args.json.read_text())
    soak = args.soak.read_text() if args.soak and args.soak.exists() else None
    previous = args.out.read_text() if args.out and args.out.exists() else None
    if soak is None and previous is not None:
        soak = kept_soak_section(previous)
    text = render(data, soak, previous)
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    for gap in known_gaps(data):
        print(f"known gap: {gap}", file=sys.stderr)
    bad = bad_rows(data)
    if bad:
        print(f"NOT CLEAN: {', '.join(sorted(bad))}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
