"""An install asked of the box's release runner, and its result: two small JSON files.

The box (``edge run``) runs as an unprivileged user in a sandbox that may not write
``/opt/parkgrid``; the install into a slot runs as root. So the box writes what central asked
(``install-release``: the command's id, the version, the bundle's sha256, the trial window
when central gave one) to ``<data_dir>/release/request.json``, and the runner, ``parkgrid
edge update --request FILE`` (started by ``parkgrid-edge-release.path`` on a box, or by the
box itself where it may write its slots), runs exactly ``edge update --from-central VERSION
--sha256 ...`` with its own settings (central's URL, the token, the key come from its
command line, never from the request; the request's trial window, when it has one, replaces
its ``--confirm-within``), writes ``result.json`` (the command's id, the exit code, the last
line said) and removes the request. Both written atomically.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic import ValidationError

from firmware_protocols.uplink.models import InstallRelease

FOLDER = "release"
REQUEST = "request.json"
RESULT = "result.json"


@dataclass(frozen=True, slots=True)
class Request:
    command_id: str
    version: str
    sha256: str
    rollout: int | None = None
    confirm_within_s: float | None = None  # the rollout's trial window; None: the runner's


@dataclass(frozen=True, slots=True)
class Result:
    command_id: str
    code: int  # edge update's exit code: 0 done, 1 failed, 2 refused
    said: str
    at: float


class BadRequest(ValueError):
    """A request file that is not one (``where``, ``reason``)."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {reason}")


def folder_in(data_dir: Path) -> Path:
    return data_dir / FOLDER


def _write(path: Path, document: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    with temporary.open("w", encoding="utf-8") as out:
        json.dump(document, out)
        out.flush()
        os.fsync(out.fileno())
    os.chmod(temporary, 0o644)  # the box reads what root's runner wrote
    os.replace(temporary, path)


def write_request(folder: Path, request: Request) -> Path:
    (folder / RESULT).unlink(missing_ok=True)
    _write(folder / REQUEST, asdict(request))
    return folder / REQUEST


def read_request(path: Path) -> Request:
    """The request, its fields checked as the wire checks them; BadRequest otherwise."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        command_id = str(uuid.UUID(str(raw["command_id"])))
        body = InstallRelease.model_validate(
            {
                "version": raw["version"],
                "sha256": raw["sha256"],
                "rollout": raw.get("rollout"),
                "confirm_within_s": raw.get("confirm_within_s"),
            }
        )
    except (OSError, ValueError, KeyError, TypeError, ValidationError) as exc:
        raise BadRequest(str(path), f"not an install request ({exc})") from None
    return Request(command_id, body.version, body.sha256, body.rollout, body.confirm_within_s)


def write_result(folder: Path, command_id: str, code: int, said: str) -> None:
    _write(folder / RESULT, asdict(Result(command_id, code, said[-480:], time.time())))


def read_result(folder: Path, command_id: str) -> Result | None:
    """The runner's result for ``command_id``, or None while there is none."""
    try:
        raw = json.loads((folder / RESULT).read_text(encoding="utf-8"))
        result = Result(str(raw["command_id"]), int(raw["code"]), str(raw["said"]),
                        float(raw["at"]))  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return result if result.command_id == command_id else None
