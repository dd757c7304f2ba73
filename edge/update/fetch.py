"""A release bundle downloaded from central into the box's data dir, resumable.

The bytes go to ``<folder>/<name>.part``, the server's ETag (central sends the bundle's
sha256) beside it in ``<name>.etag``. After an interruption (a cut link, the box restarted)
the next attempt asks for the rest with ``Range: bytes=N-`` and ``If-Range: <etag>``: a 206
from byte N is appended; a 200 means the file changed on central, so the part is dropped and
the download starts again from zero. The finished file is hashed and must match the ETag,
or it is deleted and refused. Nothing here trusts the bundle: it then goes through exactly
the checks and install of ``parkgrid edge update --from FILE`` (edge/update/install.py).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from firmware_protocols.release_manifest import ReleaseRefused

CHUNK = 1 << 16
DISK_MARGIN_BYTES = 50_000_000
SHA256_ETAG = re.compile(r'^"?([0-9a-f]{64})"?$')


class DownloadFailed(Exception):
    """The download could not finish (``url``, ``reason``); a part kept is resumed next time."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"{url}: {reason}")


@dataclass(frozen=True, slots=True)
class Downloaded:
    path: Path
    sha256: str
    resumed_from: int  # bytes already on disk when the last, finishing attempt began
    restarts: int  # times a kept part was dropped because the file on central changed


def _sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()


def _etag(response: httpx.Response, url: str) -> str:
    found = SHA256_ETAG.match(response.headers.get("etag", ""))
    if found is None:
        raise ReleaseRefused(url, "the server sent no sha256 ETag: not a parkgrid central")
    return found.group(1)


def _refuse_status(response: httpx.Response, url: str) -> None:
    if response.status_code in (401, 403, 404):
        response.read()
        try:
            detail = response.json().get("detail", "")
        except ValueError:
            detail = response.text[:200]
        raise ReleaseRefused(url, f"central answered {response.status_code}: {detail}")
    if response.status_code not in (200, 206, 416):
        raise DownloadFailed(url, f"central answered {response.status_code}")


def _check_disk(folder: Path, response: httpx.Response, url: str) -> None:
    """Refuse a download the data dir has no room for (with a margin for the box's stores)."""
    coming = int(response.headers.get("content-length", "0") or 0)
    free = shutil.disk_usage(folder).free
    if coming + DISK_MARGIN_BYTES > free:
        raise ReleaseRefused(
            url,
            f"{coming / 1e6:.0f} MB to download, {folder} has {free / 1e6:.0f} MB free "
            f"(keeping {DISK_MARGIN_BYTES / 1e6:.0f} MB for the box's stores)",
        )


def download(
    url: str,
    token: str,
    folder: Path,
    name: str,
    *,
    attempts: int = 5,
    timeout_s: float = 60.0,
    say: Callable[[str], None] = print,
) -> Downloaded:
    """``url`` into ``folder/name.tar``, resuming a part left by an earlier attempt."""
    folder.mkdir(parents=True, exist_ok=True)
    part, etag_file = folder / f"{name}.part", folder / f"{name}.etag"
    restarts = 0
    last_error = "no attempt made"
    with httpx.Client(timeout=timeout_s, headers={"Authorization": f"Bearer {token}"}) as client:
        for _attempt in range(attempts):
            have = part.stat().st_size if part.exists() else 0
            etag = etag_file.read_text().strip() if etag_file.exists() and have else None
            headers = {"Range": f"bytes={have}-", "If-Range": f'"{etag}"'} if etag else {}
            try:
                with client.stream("GET", url, headers=headers) as response:
                    _refuse_status(response, url)
                    if response.status_code == 416:  # the part is longer than the file: anew
                        say(f"download: {have} bytes kept do not fit the file; starting again")
                        part.unlink(missing_ok=True)
                        restarts += 1
                        continue
                    server_etag = _etag(response, url)
                    _check_disk(folder, response, url)
                    if response.status_code == 206 and server_etag == etag:
                        start = int(response.headers["content-range"].split()[1].split("-")[0])
                        if start != have:
                            raise DownloadFailed(url, f"asked from byte {have}, got {start}")
                        mode, resumed_from = "ab", have
                        say(f"download: resuming at byte {have}")
                    else:
                        if have:
                            say("download: the file on central changed; starting again")
                            restarts += 1
                        mode, resumed_from = "wb", 0
                        etag_file.write_text(server_etag + "\n")
                    with part.open(mode) as out:
                        for chunk in response.iter_bytes(CHUNK):
                            out.write(chunk)
                        out.flush()
                        os.fsync(out.fileno())
            except httpx.TransportError as exc:
                last_error = f"cut at byte {part.stat().st_size if part.exists() else 0} ({exc})"
                say(f"download: {last_error}; resuming")
                continue
            expected = etag_file.read_text().strip()
            got = _sha256(part)
            if got != expected:
                part.unlink()
                etag_file.unlink()
                raise ReleaseRefused(
                    url,
                    f"downloaded sha256 {got[:16]}..., central's ETag says {expected[:16]}..."
                    " (the stored bundle was changed); the download was deleted",
                )
            done = folder / f"{name}.tar"
            part.replace(done)
            etag_file.unlink()
            return Downloaded(path=done, sha256=got, resumed_from=resumed_from, restarts=restarts)
    raise DownloadFailed(url, f"{last_error}; the part is kept, run again to resume")
