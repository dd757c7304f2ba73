"""The demo town's site file, installed with the package (``parkgrid demo`` and the
simulators find it without a checkout)."""

from __future__ import annotations

from pathlib import Path

XIGANG = Path(__file__).resolve().with_name("xigang.toml")
