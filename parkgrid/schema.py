"""``parkgrid schema``: write the JSON Schema of every uplink v1 payload.

One file per payload model (``box-status.json``, ``event.json``, ...) and an ``index.json``
mapping each topic kind to its topic pattern, direction, QoS, retained flag and schema file.
The output is deterministic (sorted keys, two-space indent, trailing newline), so the copy
committed under ``docs/protocols/uplink-v1/`` can be checked byte for byte: ``make schema``
regenerates it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from firmware_protocols.uplink import PAYLOAD_MODELS, SCHEMA_FILES, TOPIC_SPECS

DEFAULT_OUT = Path("docs/protocols/uplink-v1")
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
INDEX_FILE = "index.json"


def _dump(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_schemas() -> dict[str, str]:
    """File name -> file text of every schema file and the index."""
    files: dict[str, str] = {}
    for model, name in SCHEMA_FILES.items():
        schema = model.model_json_schema()
        schema["$schema"] = JSON_SCHEMA_DIALECT
        files[name] = _dump(schema)
    index = {
        "format": "uplink-v1",
        "doc": "docs/protocols/uplink-v1.md",
        "topics": [
            {
                "kind": spec.kind.value,
                "pattern": spec.pattern,
                "direction": spec.direction,
                "qos": spec.qos,
                "retained": spec.retained,
                "schema": SCHEMA_FILES[PAYLOAD_MODELS[spec.kind]],
                "model": PAYLOAD_MODELS[spec.kind].__name__,
                "summary": spec.summary,
            }
            for spec in TOPIC_SPECS
        ],
    }
    files[INDEX_FILE] = _dump(index)
    return files


def write_schemas(out: Path) -> list[Path]:
    """Write every schema file into ``out`` (created if needed); return the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in sorted(render_schemas().items()):
        path = out / name
        path.write_bytes(text.encode())
        written.append(path)
    return written


def _run(args: argparse.Namespace) -> int:
    paths = write_schemas(Path(args.out))
    for path in paths:
        print(path)
    print(f"wrote {len(paths)} files to {args.out}", file=sys.stderr)
    return 0


def configure(parser: argparse.ArgumentParser) -> None:
    """Set up ``parkgrid schema [--out DIR]``."""
    parser.add_argument(
        "--out",
        default=str(DEFAULT_OUT),
        metavar="DIR",
        help=f"directory to write the schema files into (default: {DEFAULT_OUT})",
    )
    parser.set_defaults(handler=_run)
