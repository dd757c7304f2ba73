"""Bays in bulk: a lot has hundreds, and technicians keep them in a spreadsheet.

CSV columns (header required, order free): ``lot``, ``bay``, ``sensor``, ``format``, and
optionally ``heartbeat_timeout_s`` and ``label``. ``read_bays_csv`` validates every row with
the same rules as the TOML file and reports problems as ``bays.csv:LINE: column: message``;
``bays_to_toml`` writes the ``[lots.<id>.bays]`` tables to paste into (or include in) a box
config, and ``bays_to_csv`` writes them back out.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from pathlib import Path

from pydantic import ValidationError

from edge.config import ID_PATTERN, BayConfig, ConfigError, ConfigProblem, EdgeConfig

REQUIRED = ("lot", "bay", "sensor", "format")
OPTIONAL = ("heartbeat_timeout_s", "label")


def read_bays_csv(path: Path) -> dict[str, dict[str, BayConfig]]:
    """lot id -> bay id -> bay, or ConfigError listing every bad row."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(
            source, [ConfigProblem("", f"cannot read the file: {exc.strerror}")]
        ) from None
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED if c not in header]
    unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
    problems: list[ConfigProblem] = []
    if missing:
        problems.append(ConfigProblem(f"{source}:1", f"missing column(s): {', '.join(missing)}"))
    if unknown:
        problems.append(ConfigProblem(f"{source}:1", f"unknown column(s): {', '.join(unknown)}"))
    if problems:
        raise ConfigError(source, problems)
    lots: dict[str, dict[str, BayConfig]] = {}
    sensors: dict[str, str] = {}
    for row in reader:
        line = reader.line_num
        values = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
        where = f"{source}:{line}"
        lot, bay = values["lot"], values["bay"]
        for column in ("lot", "bay"):
            if not re.match(ID_PATTERN, values[column]):
                problems.append(
                    ConfigProblem(f"{where}: {column}", f"{values[column]!r} is not a valid id")
                )
        if not values["sensor"] and not values["format"]:
            problems.append(
                ConfigProblem(
                    f"{where}: sensor",
                    f"bay {lot}/{bay} has no sensor yet: learn it (parkgrid edge learn-bays "
                    "--bays ...) or type the id printed on the sensor and its format",
                )
            )
            continue
        fields: dict[str, object] = {"sensor": values["sensor"], "format": values["format"]}
        for column in OPTIONAL:
            if values.get(column):
                fields[column] = values[column]
        try:
            parsed = BayConfig.model_validate(fields)
        except ValidationError as exc:
            for error in exc.errors():
                column = ".".join(str(p) for p in error["loc"]) or "row"
                message = error["msg"].removeprefix("Value error, ")
                problems.append(ConfigProblem(f"{where}: {column}", message))
            continue
        if bay in lots.get(lot, {}):
            problems.append(ConfigProblem(f"{where}: bay", f"bay {bay} of lot {lot} listed twice"))
            continue
        if parsed.sensor in sensors:
            problems.append(
                ConfigProblem(
                    f"{where}: sensor",
                    f"sensor {parsed.sensor} is already mapped to {sensors[parsed.sensor]}",
                )
            )
            continue
        sensors[parsed.sensor] = f"{lot}/{bay}"
        lots.setdefault(lot, {})[bay] = parsed
    if problems:
        raise ConfigError(source, problems)
    return lots


def bays_to_toml(lots: dict[str, dict[str, BayConfig]]) -> str:
    """``[lots.<id>.bays]`` tables, one inline table per bay."""
    out: list[str] = []
    for lot_id, bays in lots.items():
        out.append(f"[lots.{lot_id}.bays]")
        for bay_id, bay in bays.items():
            items = [f"sensor = {json.dumps(bay.sensor)}", f"format = {json.dumps(bay.format)}"]
            if bay.heartbeat_timeout_s is not None:
                items.append(f"heartbeat_timeout_s = {bay.heartbeat_timeout_s:g}")
            if bay.label is not None:
                items.append(f"label = {json.dumps(bay.label, ensure_ascii=False)}")
            out.append(f"{bay_id} = {{ {', '.join(items)} }}")
        out.append("")
    return "\n".join(out)


def bays_to_csv(config: EdgeConfig) -> str:
    """Every bay of a box config, as the CSV ``read_bays_csv`` reads."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*REQUIRED, *OPTIONAL])
    rows: Iterable[tuple[str, str, BayConfig]] = config.bays()
    for lot_id, bay_id, bay in rows:
        timeout = "" if bay.heartbeat_timeout_s is None else f"{bay.heartbeat_timeout_s:g}"
        writer.writerow([lot_id, bay_id, bay.sensor, bay.format, timeout, bay.label or ""])
    return buffer.getvalue()
