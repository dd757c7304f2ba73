"""Real release bundles and a real installed box, made once per test session (slow).

``kit`` builds and signs bundles with the ``parkgrid release`` command from this checkout:
1.0.0 with the package index (the lock's wheels, as the office does), the others from those
same wheels (``--wheels-from``, still checked against the lock's hashes). ``box`` is a box
with 1.0.0 installed by ``parkgrid edge update`` into its first slot, restored for each test
from a copy made once (a venv is tied to its path, so the box is always at the same path).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PARKGRID = str(Path(sys.executable).parent / "parkgrid")
ENV = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}


def run(argv: list[str], *, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, env=ENV, timeout=900)
    if ok:
        assert done.returncode == 0, f"{argv}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


def copy_checkout(dest: Path) -> None:
    """The checkout's files (as a release holds them) in a git repository of their own."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True).stdout  # fmt: skip
    for name in filter(None, listed.decode().split("\0")):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run(["git", "add", "-A"], cwd=dest, check=True)


@dataclass
class Kit:
    home: Path
    key: Path
    public: Path
    wheels: Path
    built: dict[str, Path] = field(default_factory=dict)

    def bundle(self, version: str, *, patch: Callable[[Path], None] | None = None,
               signed: bool = True, rollback: bool = False) -> Path:  # fmt: skip
        """The bundle of ``version`` (built once); ``signed=False``: before ``release sign``."""
        name = f"{version}{'-rollback' if rollback else ''}"
        wanted = f"{name}-signed" if signed else name
        if wanted in self.built:
            return self.built[wanted]
        out = self.home / f"parkgrid-{name}.tar"
        argv = [PARKGRID, "release", "build", "--out", str(out), "--version", version,
                "--wheels-from", str(self.wheels)]  # fmt: skip
        if rollback:
            argv.append("--rollback")
        if patch is not None:
            source = self.home / f"source-{name}"
            copy_checkout(source)
            patch(source)
            argv += ["--source", str(source)]
        run(argv)
        signed_out = self.home / f"parkgrid-{name}-signed.tar"
        shutil.copy(out, signed_out)
        run([PARKGRID, "release", "sign", str(signed_out), "--key", str(self.key)])
        self.built[name], self.built[f"{name}-signed"] = out, signed_out
        return self.built[wanted]


@pytest.fixture(scope="session")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    home = tmp_path_factory.mktemp("releases")
    key = home / "release-key"
    run([PARKGRID, "release", "keygen", "--out", str(key)])
    first = home / "parkgrid-1.0.0-signed.tar"
    run([PARKGRID, "release", "build", "--out", str(first), "--version", "1.0.0"])
    run([PARKGRID, "release", "sign", str(first), "--key", str(key)])
    wheels = home / "lock-wheels"
    with tarfile.open(first) as tar:
        for member in tar.getmembers():
            if member.name.startswith("wheels/") and "parkgrid-" not in member.name:
                member.name = Path(member.name).name
                tar.extract(member, wheels, filter="data")
    kit = Kit(home=home, key=key, public=home / "release-key.pub", wheels=wheels)
    kit.built["1.0.0-signed"] = first
    return kit


def update(prefix: Path, bundle: Path, kit: Kit, *extra: str, ok: bool = True,
           parkgrid: str | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    command = parkgrid or str(prefix / "current" / "bin" / "parkgrid")
    return run([command, "edge", "update", "--from", str(bundle), "--prefix", str(prefix),
                "--key", str(kit.public), *extra], ok=ok)  # fmt: skip


@pytest.fixture(scope="session")
def pristine_box(kit: Kit, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    home = tmp_path_factory.mktemp("box")
    prefix = home / "opt-parkgrid"
    update(prefix, kit.bundle("1.0.0"), kit, parkgrid=PARKGRID)  # the first install
    pristine = home / "pristine"
    shutil.copytree(prefix, pristine, symlinks=True)
    return prefix, pristine


@pytest.fixture
def box(pristine_box: tuple[Path, Path]) -> Iterator[Path]:
    """A box running 1.0.0 in slot a, confirmed, slot b empty."""
    prefix, pristine = pristine_box
    if prefix.exists():
        shutil.rmtree(prefix)
    shutil.copytree(pristine, prefix, symlinks=True)
    yield prefix
