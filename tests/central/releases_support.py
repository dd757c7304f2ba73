"""Small signed release bundles and a central serving them over HTTP, for the release tests.

A bundle here holds one real (tiny) wheel named ``parkgrid`` whose ``parkgrid`` command
prints its version, plus incompressible padding, so a box really installs it into a slot
in seconds (the full bundles of tests/edge/update take minutes to build and are ``long``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import os
import platform
import socket
import sys
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central.db.engine import make_engine
from central.db.migrate import upgrade
from firmware_protocols.release_manifest import (
    BundleFile,
    Manifest,
    digest,
    encode_manifest,
    sign_manifest,
)
from tests.central.helpers import SITE_FILE, central_app, serving


def keypair(folder: Path, name: str = "release-key") -> tuple[bytes, Path]:
    """(the private key PEM, the path of the public key PEM)."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = folder / f"{name}.pub"
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def tiny_wheel(version: str, padding: int) -> tuple[str, bytes]:
    """A ``parkgrid`` wheel whose ``parkgrid`` command prints ``version``."""
    dist = f"parkgrid-{version}.dist-info"
    files = {
        "pgfake_cli.py": f"def main():\n    print({version!r})\n".encode(),
        "pgfake_padding.bin": os.urandom(padding),
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: parkgrid\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
        f"{dist}/entry_points.txt": b"[console_scripts]\nparkgrid = pgfake_cli:main\n",
    }
    record = []
    for name, data in files.items():
        sha = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={sha},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as wheel:
        for name, data in files.items():
            wheel.writestr(name, data)
    return f"parkgrid-{version}-py3-none-any.whl", out.getvalue()


def small_bundle(path: Path, version: str, private_key: bytes | None, *, padding: int = 0) -> Path:
    """A bundle of ``version`` for this machine, signed with ``private_key`` (None: unsigned)."""
    name, wheel = tiny_wheel(version, padding)
    manifest = Manifest(
        version=version,
        created="2026-12-07T00:00:00+00:00",
        python=f"{sys.version_info.major}.{sys.version_info.minor}",
        machine=platform.machine(),
        files=(BundleFile(f"wheels/{name}", len(wheel), digest(wheel)),),
    )
    manifest_bytes = encode_manifest(manifest)
    members = [("manifest.json", manifest_bytes), (f"wheels/{name}", wheel)]
    if private_key is not None:
        members.insert(1, ("manifest.sig", sign_manifest(manifest_bytes, private_key)))
    with tarfile.open(path, "w:") as tar:
        for member, data in members:
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@dataclass
class RunningCentral:
    url: str
    database_url: str
    releases_dir: Path
    engine: object


@contextmanager
def running_central(work: Path) -> Iterator[RunningCentral]:
    """Central over HTTP on a free port (no MQTT ingest), its store and releases in ``work``."""
    work.mkdir(parents=True, exist_ok=True)
    releases = work / "releases"
    app = central_app(
        work, SITE_FILE.read_text(), site_name="site.toml", ingest=False, releases_dir=releases
    )
    database_url = f"sqlite:///{work / 'central.db'}"
    with serving(app) as (url, _server):
        engine = make_engine(database_url)
        upgrade(engine)
        try:
            yield RunningCentral(url, database_url, releases, engine)
        finally:
            engine.dispose()


class CuttingProxy:
    """A TCP relay to ``upstream`` that cuts its first connection after ``cut_after`` bytes
    of the answer (a link dropped in the middle of a download); later ones pass whole."""

    def __init__(self, upstream: tuple[str, int], cut_after: int) -> None:
        self.upstream = upstream
        self.cut_after: int | None = cut_after
        self.requests: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> CuttingProxy:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop = True
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() of the thread
        self.listener.close()
        self._thread.join(10)

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            cut, self.cut_after = self.cut_after, None
            threading.Thread(target=self._relay, args=(client, cut), daemon=True).start()

    def _relay(self, client: socket.socket, cut: int | None) -> None:
        upstream = socket.create_connection(self.upstream)

        def forward() -> None:
            try:
                while data := client.recv(65536):
                    self.requests.append(data)
                    upstream.sendall(data)
            except OSError:
                pass

        threading.Thread(target=forward, daemon=True).start()
        sent = 0
        try:
            while data := upstream.recv(65536):
                if cut is not None and sent + len(data) >= cut:
                    client.sendall(data[: cut - sent])
                    break
                client.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            for sock in (client, upstream):  # shutdown first: it wakes the other thread's recv
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
