"""``parkgrid release build``: one tar file a box can install with no network and no compiler.

It holds the parkgrid wheel built from a checkout (the files git knows, with ``--version``
written into a copy's pyproject.toml when given) and every wheel of ``requirements.lock``,
fetched by pip with ``--require-hashes --only-binary :all:`` for the box's Python and CPU, so
the box runs exactly the locked, tested set. The manifest (firmware_protocols.release_manifest)
lists each file's size and sha256; ``parkgrid release sign`` signs it afterwards.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import tomlkit

from firmware_protocols.release_manifest import (
    MANIFEST_NAME,
    WHEELS_DIR,
    BundleFile,
    Manifest,
    ReleaseRefused,
    digest,
    encode_manifest,
)


@dataclass(frozen=True, slots=True)
class BuildRequest:
    source: Path  # a parkgrid checkout (pyproject.toml, requirements.lock, git)
    out: Path
    version: str | None = None  # default: the checkout's pyproject.toml version
    rollback: bool = False
    min_version: str | None = None
    python: str | None = None  # "3.11"; default: this interpreter's
    machine: str | None = None  # default: this machine's; required with platforms
    platforms: tuple[str, ...] = ()  # pip --platform tags for another CPU or libc
    wheels_from: Path | None = None  # a folder of wheels to take them from, not the index


class BuildFailed(Exception):
    def __init__(self, step: str, reason: str) -> None:
        self.step = step
        self.reason = reason
        super().__init__(f"{step}: {reason}")


def _run(step: str, argv: list[str], cwd: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()[-12:]
        raise BuildFailed(step, f"{' '.join(argv[:5])} ... exited {done.returncode}:\n  "
                          + "\n  ".join(said))  # fmt: skip


def copy_checkout(source: Path, dest: Path) -> None:
    """The files git knows (tracked, or new and not ignored): what a release holds."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=source, capture_output=True,
    )  # fmt: skip
    if listed.returncode != 0:
        raise BuildFailed("source", f"{source} is not a git checkout of parkgrid")
    for name in filter(None, listed.stdout.decode().split("\0")):
        path = source / name
        if path.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest / name)


def set_version(pyproject: Path, version: str) -> None:
    document = tomlkit.parse(pyproject.read_text(encoding="utf-8"))
    document["project"]["version"] = version  # type: ignore[index]
    pyproject.write_text(tomlkit.dumps(document), encoding="utf-8")


def checkout_version(source: Path) -> str:
    document = tomlkit.parse((source / "pyproject.toml").read_text(encoding="utf-8"))
    return str(document["project"]["version"])  # type: ignore[index]


def _pip(*args: str) -> list[str]:
    return [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args]


def build_bundle(request: BuildRequest, say: Callable[[str], None] = print) -> Manifest:
    source = request.source.resolve()
    lock = source / "requirements.lock"
    if not (source / "pyproject.toml").is_file() or not lock.is_file():
        raise BuildFailed("source", f"{source} has no pyproject.toml and requirements.lock")
    if request.platforms and not request.machine:
        raise BuildFailed("platform", "--platform needs --machine (the box's CPU, e.g. aarch64)")
    python = request.python or f"{sys.version_info.major}.{sys.version_info.minor}"
    machine = request.machine or platform.machine()
    with tempfile.TemporaryDirectory(prefix="parkgrid-release-") as tmp:
        work = Path(tmp)
        tree, wheels = work / "source", work / WHEELS_DIR
        wheels.mkdir()
        copy_checkout(source, tree)
        if request.version:
            set_version(tree / "pyproject.toml", request.version)
        version = checkout_version(tree)
        say(f"parkgrid {version}: building its wheel")
        _run("parkgrid wheel", _pip("wheel", "--quiet", "--no-deps", "-w", str(wheels),
                                    str(tree)), work)  # fmt: skip
        say(f"the runtime lock's wheels for Python {python} on {machine}")
        target = ["--python-version", python, "--implementation", "cp"]
        for tag in request.platforms:
            target += ["--platform", tag]
        if request.wheels_from is not None:
            # still checked against the lock's hashes: only where they come from changes
            target += ["--no-index", "--find-links", str(request.wheels_from.resolve())]
        _run("locked wheels", _pip("download", "--quiet", "--require-hashes", "--no-deps",
                                   "--only-binary", ":all:", *target, "-d", str(wheels),
                                   "-r", str(lock)), work)  # fmt: skip
        names = sorted(p.name for p in wheels.iterdir())
        if not_wheels := [n for n in names if not n.endswith(".whl")]:
            raise BuildFailed("locked wheels", f"not wheels: {', '.join(not_wheels)}")
        files = tuple(
            BundleFile(
                name=f"{WHEELS_DIR}/{name}",
                size=(wheels / name).stat().st_size,
                sha256=digest((wheels / name).read_bytes()),
            )
            for name in names
        )
        manifest = Manifest(
            version=version,
            created=datetime.now(UTC).replace(microsecond=0).isoformat(),
            python=python,
            machine=machine,
            files=files,
            rollback=request.rollback,
            min_version=request.min_version,
        )
        manifest_path = work / MANIFEST_NAME
        manifest_path.write_bytes(encode_manifest(manifest))
        partial = request.out.with_name(request.out.name + ".part")
        with tarfile.open(partial, "w:") as tar:
            tar.add(manifest_path, arcname=MANIFEST_NAME)
            for name in names:
                tar.add(wheels / name, arcname=f"{WHEELS_DIR}/{name}")
        os.replace(partial, request.out)
    return manifest


def describe(manifest: Manifest) -> str:
    kind = " (rollback release)" if manifest.rollback else ""
    return (
        f"parkgrid {manifest.version}{kind}: {len(manifest.files)} wheel(s), "
        f"{manifest.payload_bytes / 1e6:.1f} MB, Python {manifest.python} on {manifest.machine}"
    )


__all__ = ["BuildFailed", "BuildRequest", "ReleaseRefused", "build_bundle", "describe"]
