"""The committed uplink v1 JSON Schema files and the ``parkgrid schema`` command."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
from pathlib import Path

from firmware_protocols.errors import DecodeError
from firmware_protocols.uplink import (
    PAYLOAD_MODELS,
    SCHEMA_FILES,
    TOPIC_SPECS,
    TopicKind,
    decode_payload,
)
from parkgrid.schema import render_schemas, write_schemas

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "docs" / "protocols" / "uplink-v1"


def test_uplink_schema_committed_files_are_current(tmp_path: Path) -> None:
    """docs/protocols/uplink-v1/ is byte-equal to a fresh generation."""
    write_schemas(tmp_path)
    fresh = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    committed = {p.name: p.read_bytes() for p in COMMITTED.glob("*.json")}
    stale = sorted(n for n in fresh.keys() | committed.keys() if fresh.get(n) != committed.get(n))
    assert not stale, f"uplink schema files out of date: {stale}; run `make schema` and commit"


def test_uplink_schema_render_is_deterministic() -> None:
    """Two renders give the same bytes, sorted keys and a trailing newline."""
    first, second = render_schemas(), render_schemas()
    assert first == second
    for text in first.values():
        assert text.endswith("}\n")
        document = json.loads(text)
        assert json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n" == text


def test_uplink_schema_payloads_require_v_and_forbid_extras() -> None:
    """Every payload schema requires v == 1 and refuses unknown properties."""
    files = render_schemas()
    for model, name in SCHEMA_FILES.items():
        schema = json.loads(files[name])
        assert schema["required"][0] == "v", name
        assert schema["properties"]["v"]["const"] == 1, name
        assert schema["additionalProperties"] is False, name
        assert schema["title"] == model.__name__


def test_uplink_schema_index_lists_every_topic_kind() -> None:
    """index.json maps each topic kind to its pattern, flags and an existing schema file."""
    files = render_schemas()
    index = json.loads(files["index.json"])
    assert [t["kind"] for t in index["topics"]] == [s.kind.value for s in TOPIC_SPECS]
    for row in index["topics"]:
        assert row["schema"] in files
        assert row["qos"] == 1
    by_kind = {t["kind"]: t for t in index["topics"]}
    assert by_kind["event"]["retained"] is False
    assert by_kind["lot"]["retained"] is True
    assert len(PAYLOAD_MODELS) == len(index["topics"])


def test_parkgrid_schema_cli_writes_files(tmp_path: Path) -> None:
    """`python -m parkgrid schema --out DIR` writes the same files as the committed ones."""
    out = tmp_path / "schemas"
    result = subprocess.run(
        [sys.executable, "-m", "parkgrid", "schema", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(render_schemas())
    assert (out / "event.json").read_bytes() == (COMMITTED / "event.json").read_bytes()
    assert "wrote 11 files" in result.stderr


def test_uplink_doc_examples_are_valid_payloads() -> None:
    """Every JSON example in docs/protocols/uplink-v1.md decodes as one of the v1 payloads."""
    text = (REPO / "docs" / "protocols" / "uplink-v1.md").read_text()
    blocks = re.findall(r"```json\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) >= len(SCHEMA_FILES)
    seen = set()
    for block in blocks:
        data = block.encode()
        matches = []
        for kind in TopicKind:
            with contextlib.suppress(DecodeError):
                matches.append(type(decode_payload(kind, data)))
        assert len(set(matches)) == 1, block[:200]
        seen.add(matches[0])
    assert seen == set(SCHEMA_FILES)
