"""The picture store: bytes in, their SHA-256 out; the same hash gives the bytes back.

Content addressing makes a picture its own proof: the ledger keeps the hash, and any copy
of the picture, wherever it is kept, can be checked against it. The interface is three
methods so an object store (S3, MinIO, OSS) can replace the disk: implement
:class:`PictureStore` and hand it to the app (``app.state.pictures``).

On disk, a picture lives at ``<root>/ab/cd/abcd...`` (two levels of fan-out, so no
directory grows past a few thousand entries); it is written to a temporary file and renamed
into place, so a reader never sees half a picture and two writers of the same picture agree.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def is_sha256(value: str) -> bool:
    return bool(_SHA256.match(value))


class PictureStore(Protocol):
    def put(self, data: bytes) -> str:
        """Store ``data``; return its SHA-256 (hex). Storing the same bytes twice is a no-op."""

    def get(self, sha256: str) -> bytes | None:
        """The bytes of a stored picture, or None when this store does not have it."""

    def has(self, sha256: str) -> bool: ...


class DiskPictureStore:
    """Pictures as files under ``root``."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def _path(self, sha256: str) -> Path:
        if not is_sha256(sha256):
            raise ValueError(f"{sha256!r} is not a SHA-256 in hex")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        path = self._path(digest)
        if path.exists():
            return digest
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest

    def get(self, sha256: str) -> bytes | None:
        try:
            return self._path(sha256).read_bytes()
        except (FileNotFoundError, ValueError):
            return None

    def has(self, sha256: str) -> bool:
        try:
            return self._path(sha256).exists()
        except ValueError:
            return False


def picture_store_for(pictures_dir: Path | str) -> DiskPictureStore:
    """The default store: files under ``pictures_dir`` (``CentralSettings.pictures_dir``)."""
    return DiskPictureStore(Path(pictures_dir).resolve())
