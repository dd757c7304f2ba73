"""Config files: every field of a valid file made wrong in turn gives one clear message.

Each leaf of the example box config (docs/examples/edge-p1.toml) and of a site file
(tests/central/site_small.toml) is replaced by a TOML table, which no scalar or list field
accepts; the validator must answer with exactly one problem, naming that field's path.
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.config import ConfigError, parse_config
from site_model.site import SiteError, parse_site
from tests.faults.rig import ROOT, record

EDGE_EXAMPLE = ROOT / "docs" / "examples" / "edge-p1.toml"
SITE_EXAMPLE = ROOT / "tests" / "central" / "site_small.toml"
WRONG = {"wrong": True}


def leaves(doc: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from leaves(value, (*path, key))
    else:
        yield path


def spoil(doc: dict[str, Any], path: tuple[str | int, ...]) -> dict[str, Any]:
    bad = copy.deepcopy(doc)
    node: Any = bad
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = WRONG
    return bad


def dotted(path: tuple[str | int, ...]) -> str:
    return ".".join(str(p) for p in path)


def problems_for(kind: str, doc: dict[str, Any]) -> list[tuple[str, str]]:
    try:
        if kind == "edge":
            parse_config(doc)
        else:
            parse_site(doc)
    except ConfigError as exc:
        return [(p.path, p.message) for p in exc.problems]
    except SiteError as exc:
        return [(getattr(p, "path", ""), getattr(p, "message", str(p))) for p in exc.problems]
    return []


@pytest.mark.parametrize(
    ("kind", "source"),
    [
        pytest.param("edge", EDGE_EXAMPLE, id="edge-toml"),
        pytest.param("site", SITE_EXAMPLE, id="site-toml"),
    ],
)
def test_badinput_config_every_field_wrong_gives_one_message(kind: str, source: Path) -> None:
    """Each field made wrong in turn: exactly one problem, at that field's path, in words."""
    doc = tomllib.loads(source.read_text())
    assert problems_for(kind, doc) == [], "the example itself is valid"
    tried, unclear = 0, []
    for path in leaves(doc):
        tried += 1
        got = problems_for(kind, spoil(doc, path))
        ok = (
            len(got) == 1
            and (got[0][0] == dotted(path) or got[0][0].startswith(dotted(path) + "."))
            and len(got[0][1]) > 5
        )
        if not ok:
            unclear.append(f"{dotted(path)} -> {got}")
    record(
        "badinput",
        f"config file: {source.name}",
        {
            "cases": tried,
            "refused": tried - len(unclear),
            "how": "exactly one problem naming the field's dotted path",
            "unclear": unclear,
        },
    )
    assert unclear == []
    assert tried > 10
