"""tests/faults/report.py renders the "Hostile people" table and keeps what a run did not redo."""

from __future__ import annotations

from tests.faults.report import kept_sections, known_gaps, render

ROWS = {
    "hostile": {
        "login burst": {
            "attack": "100 wrong passwords | at once",
            "tried": 101,
            "refused": 101,
            "notes": "5 checked",
            "recorded_at": 1.0,
        },
        "stream after logout": {"attack": "keep it open", "tried": 3, "refused": 2, "notes": ""},
    },
}


def test_report_renders_every_hostile_row_and_names_the_short_ones() -> None:
    page = render(ROWS)
    assert "## Hostile people" in page
    assert "| login burst | 100 wrong passwords \\| at once | 101 | 101 | 5 checked |" in page
    assert "| stream after logout | keep it open | 3 | 2 |" in page
    assert known_gaps(ROWS) == ["stream after logout: 2 of 3 refused"]
    assert "### Hostile people: still not covered" in page


def test_report_keeps_the_sections_a_run_has_no_rows_for() -> None:
    before = render(
        {
            "faults": {"1 broker SIGKILL": {"events_sent": 7, "lost": 0, "recorded_at": 1.0}},
            "security": {"old check": {"cases": 1, "refused": 1, "how": "old"}},
        }
    )
    after = render(ROWS, previous=before)
    kept = kept_sections(before)
    assert kept["Fault scenarios"] in after and "| 1 broker SIGKILL | 7 |" in after
    assert "| old check | 1 | 1 | old |" in after
    assert (
        "Kept from the page before (not re-run this time): Fault scenarios, Hostile clients"
        in after
    )
    # A section the run has rows for is rendered anew, not kept.
    fresh = render({**ROWS, "security": {"new check": {"cases": 2, "refused": 2}}}, previous=before)
    assert "old check" not in fresh and "| new check | 2 | 2 |" in fresh
