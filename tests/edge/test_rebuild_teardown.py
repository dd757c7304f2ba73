"""A configuration push rebuilds the box in its process (``edge.runtime._run_once``): the
old box's tasks are cancelled and awaited, then the new one starts. Found in CI (stop 27):
a box logged "config-push version 1 accepted: rebuilding the box with it" and then nothing
for 120 s: one of the old box's tasks never finished after its cancel, so the rebuild
waited for it for ever, no new box started, no health gate ran, nothing rolled back: a box
dead in the field until someone restarted it. Now the rebuild cancels a task that did not
stop once more, then goes on without it and logs which one and where it was stuck.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from edge import runtime
from edge.config_apply import ConfigApplier
from edge.release_command import ReleaseInstaller, ReleaseSettings

CONFIG = """\
site = "xigang"
box_id = "box-p1"
data_dir = "{data}"

[mqtt]
url = "mqtt://127.0.0.1:1"

[health]
listen = "127.0.0.1:0"
"""


async def _stubborn(swallow: int, released: asyncio.Event) -> None:
    """A box's run that swallows its first ``swallow`` cancels (-1: every one, until the
    test is done with it)."""
    seen = 0
    while not released.is_set():
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            seen += 1
            if swallow != -1 and seen > swallow:
                raise


@pytest.mark.parametrize("swallow", [1, -1])
async def test_a_rebuild_goes_on_when_an_old_task_will_not_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, swallow: int
) -> None:
    config = tmp_path / "edge.toml"
    config.write_text(CONFIG.format(data=tmp_path / "data"), encoding="utf-8")
    applier = ConfigApplier(config)
    installer = ReleaseInstaller(ReleaseSettings.from_environment(applier.config.data_dir))
    monkeypatch.setattr(runtime, "TEARDOWN_S", 0.5, raising=False)
    released = asyncio.Event()
    monkeypatch.setattr(runtime.EdgeBox, "run", lambda self: _stubborn(swallow, released))
    asyncio.get_running_loop().call_later(0.2, applier.rebuild.set)
    with caplog.at_level(logging.ERROR, logger="edge.runtime"):
        rebuilt = asyncio.create_task(runtime._run_once(applier, installer, "sha256:x"))
        done, _ = await asyncio.wait({rebuilt}, timeout=5)
        released.set()  # the stubborn task may end now (the test's loop must close)
        if not done:  # the rebuild hung: leave no task behind, then fail
            await asyncio.wait({rebuilt}, timeout=2)
        assert done, "the rebuild waited for a task that will not stop"
        rebuilt.result()
    stuck = [r.getMessage() for r in caplog.records if "did not stop" in r.getMessage()]
    if swallow == 1:  # the second cancel ended it: nothing to report
        assert stuck == []
    else:
        assert len(stuck) == 1 and "box" in stuck[0] and "_stubborn" in stuck[0], stuck
