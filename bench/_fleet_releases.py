"""The fleet bench's releases, built from this checkout with ``parkgrid release``.

N (installed first) from the package index (or pip's cache), N+1 (good) and N+2 from N's
wheels (``--wheels-from``). N+2 is a real bad release: built from a copy of the checkout whose
uplink connects to the broker's port plus one, so it starts, runs and never reaches the
broker (its health gate fails). ``tampered`` is N+2's signed bundle with one byte of its
parkgrid wheel changed (the signed manifest untouched), as a box would be offered it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PATCHED_FILE = Path("edge/agents/uplink/mqtt_link.py")
PATCH_FROM = "self._client.connect, s.host, s.port, s.keepalive_s"
PATCH_TO = "self._client.connect, s.host, s.port + 1, s.keepalive_s"


@dataclass
class Releases:
    home: Path
    versions: tuple[str, str, str]  # N, N+1, N+2
    bundles: dict[str, Path]
    tampered: Path
    public_key: Path
    build_s: dict[str, float]


def _parkgrid(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "parkgrid", *args], capture_output=True, text=True, timeout=900
    )
    if done.returncode != 0:
        raise RuntimeError(f"parkgrid {' '.join(args)}: {done.stderr[-2000:]}")
    return done.stdout


def copy_checkout(dest: Path) -> None:
    """The checkout's files as a release holds them (what git knows), in a repository."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout
    for name in filter(None, listed.decode().split("\0")):
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run(["git", "add", "-A"], cwd=dest, check=True)


def never_reaches_broker(source: Path) -> None:
    path = source / PATCHED_FILE
    text = path.read_text()
    if PATCH_FROM not in text:
        raise RuntimeError(f"{PATCHED_FILE}: the line N+2 breaks is gone: {PATCH_FROM!r}")
    path.write_text(text.replace(PATCH_FROM, PATCH_TO))


def tamper(signed: Path, out: Path) -> None:
    """A copy of ``signed`` with one byte of its parkgrid wheel flipped (same size)."""
    with tarfile.open(signed) as src, tarfile.open(out, "w") as dst:
        for member in src.getmembers():
            data = src.extractfile(member) if member.isfile() else None
            if data is not None and member.name.startswith("wheels/parkgrid-"):
                raw = bytearray(data.read())
                raw[len(raw) // 2] ^= 0x01
                import io

                dst.addfile(member, io.BytesIO(bytes(raw)))
            else:
                dst.addfile(member, data)


def build(home: Path, versions: tuple[str, str, str], say: object = print) -> Releases:
    home.mkdir(parents=True, exist_ok=True)
    key = home / "release-key"
    if not key.exists():
        _parkgrid("release", "keygen", "--out", str(key))
    n, good, bad = versions
    bundles: dict[str, Path] = {}
    build_s: dict[str, float] = {}
    wheels = home / "lock-wheels"
    for version, patch in ((n, False), (good, False), (bad, True)):
        out = home / f"parkgrid-{version}.tar"
        started = time.monotonic()
        argv = ["release", "build", "--out", str(out), "--version", version, "--source", str(REPO)]
        if version != n:
            argv += ["--wheels-from", str(wheels)]
        if patch:
            source = home / f"source-{version}"
            shutil.rmtree(source, ignore_errors=True)
            copy_checkout(source)
            never_reaches_broker(source)
            argv[argv.index("--source") + 1] = str(source)
        out.unlink(missing_ok=True)
        _parkgrid(*argv)
        _parkgrid("release", "sign", str(out), "--key", str(key))
        build_s[version] = time.monotonic() - started
        bundles[version] = out
        if version == n:
            shutil.rmtree(wheels, ignore_errors=True)
            with tarfile.open(out) as tar:
                for member in tar.getmembers():
                    if member.name.startswith("wheels/") and "parkgrid-" not in member.name:
                        member.name = Path(member.name).name
                        tar.extract(member, wheels, filter="data")
        if callable(say):
            say(
                f"release {version}: built and signed in {build_s[version]:.1f} s"
                + (" (from a copy whose uplink dials the broker's port + 1)" if patch else "")
            )
    tampered = home / f"parkgrid-{bad}-tampered.tar"
    tamper(bundles[bad], tampered)
    return Releases(home, versions, bundles, tampered, home / "release-key.pub", build_s)
