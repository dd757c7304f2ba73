"""Central's ``install-release`` on the box (``edge/release_command.py``), against a real
central serving real signed bundles over HTTP: the box's own ``edge update`` runs as a
subprocess into a real slot (the small bundles of tests/central/releases_support.py, so a
slot is built in seconds). Every refusal leaves the slots and ``state.json`` as they were.
(The whole path over MQTT, with the box as a ``parkgrid edge run`` process that stops and
exits for its supervisor: tests/edge/update/test_install_release_box.py.)"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import itertools
import json
import os
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from central.auth.models import Role
from central.auth.service import issue_token
from edge import release_command
from edge.release_command import ReleaseInstaller, ReleaseSettings, release_report, running_prefix
from edge.update.request import BadRequest, Request, read_request, write_request
from firmware_protocols.uplink.models import Command, InstallRelease
from parkgrid.cli import main
from tests.central.releases_support import RunningCentral, keypair, running_central, small_bundle
from tests.edge.fleet_town import until


@dataclass
class Box:
    central: RunningCentral
    prefix: Path
    settings: ReleaseSettings
    private: bytes
    work: Path

    def store(self, version: str) -> str:
        """A signed bundle of ``version`` stored on central; its sha256 as the wire says it."""
        bundle = small_bundle(self.work / f"{version}.tar", version, self.private, padding=50_000)
        assert main(["central", "release", "add", str(bundle), "--key",
                     str(self.settings.public_key), "--releases-dir",
                     str(self.central.releases_dir), "--database-url",
                     self.central.database_url]) == 0  # fmt: skip
        return "sha256:" + hashlib.sha256(bundle.read_bytes()).hexdigest()

    def untouched(self) -> tuple[str, bool, bytes]:
        """What must not change on a refusal: current's target, slot b, state.json."""
        return (
            os.readlink(self.prefix / "current"),
            (self.prefix / "releases" / "b").exists(),
            (self.prefix / "releases" / "state.json").read_bytes(),
        )


def _command(
    version: str,
    sha256: str,
    *,
    expires_in: float | None = None,
    confirm_within_s: float | None = None,
) -> Command:
    now = dt.datetime.now(dt.UTC)
    expires = None if expires_in is None else now + dt.timedelta(seconds=expires_in)
    body = InstallRelease(
        version=version, sha256=sha256, rollout=1, confirm_within_s=confirm_within_s
    )
    return Command(command_id=uuid.uuid4(), issued_at=now, expires_at=expires, body=body)


def make_slot(prefix: Path, version: str) -> None:
    """A box running ``version`` from slot a, confirmed (as after its first install)."""
    slot = prefix / "releases" / "a"
    slot.mkdir(parents=True)
    (slot / "parkgrid-release.json").write_text(json.dumps({"version": version}) + "\n")
    os.symlink("releases/a", prefix / "current")
    (prefix / "releases" / "state.json").write_text(
        json.dumps({"good": "a", "trial": None, "history": []}) + "\n"
    )


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Box]:
    with running_central(tmp_path / "central") as central:
        private, public = keypair(tmp_path)
        token = issue_token(central.engine, name="box-p1", role=Role.BOX, ttl_s=600, actor="t")[0]
        (tmp_path / "central-token").write_text(token + "\n")
        prefix = tmp_path / "opt"
        make_slot(prefix, "1.0.0")
        settings = ReleaseSettings(
            prefix=prefix,
            central_url=central.url,
            token_file=tmp_path / "central-token",
            public_key=public,
            data_dir=tmp_path / "data",
        )
        settings.data_dir.mkdir()
        yield Box(central, prefix, settings, private, tmp_path)


@pytest.mark.slow
@pytest.mark.long  # 15-28 s: a whole rig; `make test-long`
async def test_an_install_runs_beside_the_loop_switches_and_asks_for_a_restart(box: Box) -> None:
    sha = box.store("2.0.0")
    installer = ReleaseInstaller(box.settings)
    restarts: list[float] = []
    installer.restart = lambda: restarts.append(time.monotonic())
    ticks: list[float] = []

    async def loop_ticks() -> None:
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.05)

    ticking = asyncio.create_task(loop_ticks())
    first = _command("2.0.0", sha)
    started = time.monotonic()
    install = asyncio.create_task(installer.handle(first, time.time()))
    await until(lambda: installer.installing is not None, 10, "the install started")
    # another release asked while this one installs: refused at once, nothing changed
    second = await installer.handle(_command("3.0.0", sha), time.time())
    assert second is not None and "already running" in second
    # the same one asked again: no second install, the first one's outcome is its reply
    repeat = asyncio.create_task(installer.handle(_command("2.0.0", sha), time.time()))
    assert await install is None
    assert await repeat is None
    took = time.monotonic() - started
    ticking.cancel()
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    # the loop never waited on it: ticks all along (a blocking install is one gap of it all;
    # the bounds leave room for a machine shared by several test runs)
    assert took > 1.0 and max(gaps) < took / 4 and len(ticks) > took / 0.05 / 4, (
        took, max(gaps), len(ticks),
    )  # fmt: skip

    assert os.readlink(box.prefix / "current") == "releases/b"
    state = json.loads((box.prefix / "releases" / "state.json").read_text())
    assert state["trial"]["version"] == "2.0.0" and state["good"] == "a"
    report = installer.report()
    assert (report.version, report.state) == ("2.0.0", "on_trial")
    await asyncio.sleep(release_command.REPLY_GRACE_S + 0.3)
    assert len(restarts) == 1  # after the reply's grace, the box stops for its supervisor
    assert not list((box.settings.data_dir / "downloads").iterdir())
    # the same command again (central repeating it after the restart): ok, nothing done
    again = ReleaseInstaller(box.settings)
    again.restart = lambda: restarts.append(0.0)
    assert await again.handle(first, time.time()) is None
    assert again.installed is None and len(restarts) == 1


async def test_the_version_already_running_confirmed_is_ok_at_once(box: Box) -> None:
    installer = ReleaseInstaller(box.settings)
    before = box.untouched()
    installer.restart = lambda: pytest.fail("the running version needs no restart")
    assert await installer.handle(_command("1.0.0", "sha256:" + "ab" * 32), time.time()) is None
    assert installer.installed is None  # nothing fetched, nothing installed (not timed:
    assert box.untouched() == before  # a wall-clock limit is a flake on a loaded machine)


@pytest.mark.parametrize(
    "case", ["sha256", "tampered", "unsigned", "older", "expired", "on-trial", "gone"]
)
async def test_each_refusal_replies_why_and_changes_nothing(box: Box, case: str) -> None:
    sha = box.store("2.0.0")
    command = _command("2.0.0", sha)
    if case == "sha256":
        command = _command("2.0.0", "sha256:" + "0" * 64)
        expected = "update refused: sha256: the downloaded bundle's sha256 is"
    elif case == "tampered":
        # whoever writes central's disk changes the bundle and its recorded sha256 alike:
        # the download matches, the signed manifest does not
        stored = box.central.releases_dir / "2.0.0" / "bundle.tar"
        data = bytearray(stored.read_bytes())
        with tarfile.open(stored) as tar:
            wheel = next(m for m in tar.getmembers() if m.name.startswith("wheels/"))
        data[wheel.offset_data + wheel.size // 2] ^= 0xFF
        stored.write_bytes(bytes(data))
        info_file = box.central.releases_dir / "2.0.0" / "release.json"
        info = json.loads(info_file.read_text())
        info["sha256"] = hashlib.sha256(bytes(data)).hexdigest()
        info_file.write_text(json.dumps(info))
        command = _command("2.0.0", "sha256:" + info["sha256"])
        expected = "update refused: wheels/parkgrid-2.0.0-py3-none-any.whl: sha256"
    elif case == "unsigned":
        # central stores only signed bundles: this one was put in place of the stored file
        folder = box.central.releases_dir / "2.0.0"
        small_bundle(folder / "bundle.tar", "2.0.0", None, padding=50_000)
        info = json.loads((folder / "release.json").read_text())
        info["sha256"] = hashlib.sha256((folder / "bundle.tar").read_bytes()).hexdigest()
        (folder / "release.json").write_text(json.dumps(info))
        command = _command("2.0.0", "sha256:" + info["sha256"])
        expected = "update refused: manifest.sig: the bundle is not signed"
    elif case == "older":
        command = _command("0.9.0", box.store("0.9.0"))
        expected = "update refused: version: 0.9.0 is older than the installed 1.0.0"
    elif case == "expired":
        command = _command("2.0.0", sha, expires_in=-1)
        expected = "expired"
    elif case == "on-trial":
        state_file = box.prefix / "releases" / "state.json"
        state_file.write_text(json.dumps({"good": "b", "history": [], "trial": {
            "slot": "a", "version": "1.0.0", "from_slot": "b", "confirm_within_s": 600,
            "max_boots": 3, "boots": 1, "since": time.time()}}))  # fmt: skip
        expected = "release 1.0.0 is still on trial"
    else:  # the version is not on central
        command = _command("3.0.0", sha)
        expected = "update refused: http://"
    before = box.untouched()
    installer = ReleaseInstaller(box.settings)
    installer.restart = lambda: pytest.fail("restarted after a refusal")
    error = await installer.handle(command, time.time())
    assert error is not None and error.startswith(expected), error
    if case == "gone":
        assert "central answered 404" in error
    assert box.untouched() == before
    assert installer.installed is None and installer.installing is None
    downloads = box.settings.data_dir / "downloads"
    assert not downloads.exists() or not list(downloads.iterdir())


async def test_a_box_not_running_from_a_slot_refuses_and_reports_unmanaged(tmp_path: Path) -> None:
    settings = ReleaseSettings(
        prefix=None,
        central_url="http://127.0.0.1:9",
        token_file=tmp_path / "t",
        public_key=tmp_path / "k",
        data_dir=tmp_path,
    )
    installer = ReleaseInstaller(settings)
    error = await installer.handle(_command("2.0.0", "sha256:" + "ab" * 32), time.time())
    assert error is not None and error.startswith("this box does not run from a release slot")
    assert installer.report().state == "unmanaged" and installer.report().version is None
    assert running_prefix() is None  # this checkout's venv is no slot
    assert os.listdir(tmp_path) == []


def test_running_prefix_finds_a_slot_s_prefix(tmp_path: Path) -> None:
    make_slot(tmp_path / "opt", "1.0.0")
    assert running_prefix(str(tmp_path / "opt" / "releases" / "a")) == tmp_path / "opt"
    assert running_prefix(str(tmp_path / "opt" / "current")) == tmp_path / "opt"
    assert running_prefix(str(tmp_path / "venv")) is None


def test_the_report_says_rolled_back_with_the_failed_version_and_why(tmp_path: Path) -> None:
    prefix = tmp_path / "opt"
    make_slot(prefix, "1.0.0")
    assert release_report(prefix, 0).state == "confirmed"
    reason = "failed its health gate: not connected to the broker"
    (prefix / "releases" / "state.json").write_text(json.dumps({"good": "a", "trial": None,
        "history": [{"at": 100.0, "event": "installed", "version": "1.1.0"},
                    {"at": 200.0, "event": "gate failed", "version": "1.1.0", "reason": "x"},
                    {"at": 300.0, "event": "rolled back", "version": "1.1.0",
                     "reason": reason}]}))  # fmt: skip
    report = release_report(prefix, 400.0)
    assert (report.version, report.state, report.failed_version) == (
        "1.0.0",
        "rolled_back",
        "1.1.0",
    )
    assert report.reason == reason and report.ts.timestamp() == 300.0


async def test_a_change_of_state_json_is_announced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(release_command, "STATE_POLL_S", 0.05)
    prefix = tmp_path / "opt"
    make_slot(prefix, "1.0.0")
    settings = ReleaseSettings(prefix, None, tmp_path / "t", tmp_path / "k", tmp_path)
    installer = ReleaseInstaller(settings)
    seen: list[str] = []
    installer.announce = lambda: seen.append(installer.report().state)
    watching = asyncio.create_task(installer.watch())
    try:
        await asyncio.sleep(0.3)
        assert seen == []  # nothing changed: nothing said
        state = prefix / "releases" / "state.json"
        state.write_text(
            json.dumps(
                {
                    "good": "a",
                    "trial": None,
                    "history": [
                        {"at": 1.0, "event": "rolled back", "version": "1.1.0", "reason": "crashed"}
                    ],
                }
            )
        )
        await until(lambda: seen, 5, "the change announced")
        assert seen == ["rolled_back"]
    finally:
        watching.cancel()


async def _path_unit(box: Box) -> int:
    """What parkgrid-edge-release.path and .service do: when the box's request appears, run
    the runner with the runner's own settings (not the box's); its exit code."""
    request = box.settings.data_dir / "release" / "request.json"
    await until(request.exists, 30, "the box's request")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "parkgrid", "edge", "update", "--request", str(request),
        "--prefix", str(box.prefix), "--key", str(box.settings.public_key),
        "--token-file", str(box.settings.token_file), "--data-dir", str(box.settings.data_dir),
        "--central-url", box.central.url,
    )  # fmt: skip
    return await process.wait()


@pytest.mark.slow
@pytest.mark.long  # 15-28 s: a whole rig; `make test-long`
async def test_under_the_unit_a_root_runner_carries_out_the_box_s_request(box: Box) -> None:
    sha = box.store("2.0.0")
    settings = dataclasses.replace(box.settings, runner="unit", central_url=None)
    # a refusal comes back as the runner said it, nothing changed
    before = box.untouched()
    refused = ReleaseInstaller(settings)
    refused.restart = lambda: pytest.fail("restarted after a refusal")
    unit = asyncio.create_task(_path_unit(box))
    error = await refused.handle(_command("2.0.0", "sha256:" + "0" * 64), time.time())
    assert await unit == 2
    assert error is not None and error.startswith("update refused: sha256: "), error
    assert box.untouched() == before
    # and an install
    installer = ReleaseInstaller(settings)
    installer.restart = lambda: None
    unit = asyncio.create_task(_path_unit(box))
    assert await installer.handle(_command("2.0.0", sha), time.time()) is None
    assert await unit == 0
    assert os.readlink(box.prefix / "current") == "releases/b"
    assert not (settings.data_dir / "release" / "request.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize("runner", ["process", "unit"])
async def test_the_command_s_trial_window_is_the_new_release_s(box: Box, runner: str) -> None:
    """The rollout's trial window travels in the command, through the request file, to the
    runner's install: state.json's trial has it, not the runner's default (600 s)."""
    sha = box.store("2.0.0")
    settings = dataclasses.replace(box.settings, runner=runner)
    installer = ReleaseInstaller(settings)
    installer.restart = lambda: None
    unit = asyncio.create_task(_path_unit(box)) if runner == "unit" else None
    command = _command("2.0.0", sha, confirm_within_s=45)
    assert await installer.handle(command, time.time()) is None
    if unit is not None:
        assert await unit == 0
    state = json.loads((box.prefix / "releases" / "state.json").read_text())
    assert state["trial"]["version"] == "2.0.0"
    assert state["trial"]["confirm_within_s"] == 45


def test_a_request_keeps_the_trial_window_and_refuses_one_out_of_bounds(tmp_path: Path) -> None:
    folder = tmp_path / "release"
    sha = "sha256:" + "ab" * 32
    path = write_request(folder, Request(str(uuid.uuid4()), "2.0.0", sha, 1, 90.0))
    assert read_request(path).confirm_within_s == 90.0
    path = write_request(folder, Request(str(uuid.uuid4()), "2.0.0", sha, 1))
    assert read_request(path).confirm_within_s is None
    path = write_request(folder, Request(str(uuid.uuid4()), "2.0.0", sha, 1, 5.0))
    with pytest.raises(BadRequest, match="confirm_within_s"):
        read_request(path)


@pytest.mark.parametrize(
    "request_text",
    [
        "not json",
        json.dumps({"command_id": str(uuid.uuid4()), "version": "../../etc", "sha256": "x"}),
        json.dumps({"command_id": "1", "version": "2.0.0", "sha256": "sha256:" + "ab" * 32}),
    ],
    ids=["not json", "a path for a version", "a command id no uuid"],
)
def test_a_request_that_is_none_is_refused_and_removed(tmp_path: Path, request_text: str) -> None:
    request = tmp_path / "release" / "request.json"
    request.parent.mkdir()
    request.write_text(request_text)
    done = subprocess.run(
        [sys.executable, "-m", "parkgrid", "edge", "update", "--request", str(request),
         "--prefix", str(tmp_path / "opt"), "--central-url", "http://127.0.0.1:9"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith(f"update refused: {request}: not an install request")
    assert not request.exists() and not (tmp_path / "opt").exists()


@pytest.mark.slow
async def test_a_request_left_by_a_power_cut_is_carried_on_under_the_unit(box: Box) -> None:
    """The box cut during an install: at its next start the path unit's runner carries out
    the request left behind, and the box restarts into the release once it is in."""
    sha = box.store("2.0.0")
    folder = box.settings.data_dir / "release"
    write_request(folder, Request(str(uuid.uuid4()), "2.0.0", sha, 1))
    installer = ReleaseInstaller(dataclasses.replace(box.settings, runner="unit"))
    restarts: list[str] = []
    installer.restart = lambda: restarts.append("restart")
    resuming = asyncio.create_task(installer.resume())
    assert await _path_unit(box) == 0
    await asyncio.wait_for(resuming, 30)
    assert restarts == ["restart"] and installer.installed is not None
    assert os.readlink(box.prefix / "current") == "releases/b"


@pytest.mark.slow
async def test_central_asking_again_during_a_resumed_install_waits_for_it(box: Box) -> None:
    """Central sends the install again to a box back on a new boot without a reply (its
    rollout cannot tell a runner that died from one that goes on under the unit): the box
    answers it with the resumed install's outcome instead of refusing it as a second one."""
    sha = box.store("2.0.0")
    folder = box.settings.data_dir / "release"
    write_request(folder, Request(str(uuid.uuid4()), "2.0.0", sha, 1))
    installer = ReleaseInstaller(dataclasses.replace(box.settings, runner="unit"))
    restarts: list[str] = []
    installer.restart = lambda: restarts.append("restart")
    resuming = asyncio.create_task(installer.resume())
    await until(lambda: installer.installing is not None, 10, "the resumed install")
    again = asyncio.create_task(installer.handle(_command("2.0.0", sha), time.time()))
    other = await installer.handle(_command("3.0.0", sha), time.time())
    assert other is not None and "already running" in other  # another version: refused
    assert await _path_unit(box) == 0
    await asyncio.wait_for(resuming, 30)
    assert await asyncio.wait_for(again, 30) is None
    assert restarts == ["restart"]


async def test_a_request_left_without_its_runner_is_dropped(box: Box) -> None:
    folder = box.settings.data_dir / "release"
    write_request(folder, Request(str(uuid.uuid4()), "2.0.0", "sha256:" + "ab" * 32, 1))
    installer = ReleaseInstaller(box.settings)  # the box's own runner died with it
    installer.restart = lambda: pytest.fail("restarted")
    before = box.untouched()
    await installer.resume()
    assert not (folder / "request.json").exists() and box.untouched() == before
