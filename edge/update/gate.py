"""The health gate a release on trial must pass, and ``parkgrid edge confirm`` around it.

The gate reads what the box's health page already knows (``/healthz`` and ``/metrics`` on
``health.listen``): connected to the broker, every serial line up and a frame heard on it
(its sensors heard), every sign answering the box's reads (read back). ``confirm`` runs
beside the box (``ExecStartPost`` in the unit): with no trial it returns at once; with one it
polls the gate until it passes (the trial's slot becomes the good one) or the trial's time
runs out (it records why and exits 1, systemd restarts the unit, and the boot check returns
to the previous slot).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from edge.update.slots import Layout

POLL_S = 1.0


def gate_failures(healthz: Mapping[str, Any], metrics_text: str) -> list[str]:
    """What keeps the box from passing its health gate; empty when it passes. Pure."""
    failures = []
    if healthz.get("mqtt_connected") is not True:
        failures.append("not connected to the broker")
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    for labels, value in samples.get("parkgrid_edge_serial_up", []):
        if value != 1:
            failures.append(f"serial line {labels.get('line')} is down")
    # Sensor payloads, not frames: a concentrator's own status and replay frames are no sensor.
    for labels, value in samples.get("parkgrid_edge_serial_observations_total", []):
        if value <= 0:
            failures.append(f"no sensor heard on serial line {labels.get('line')}")
    for labels, value in samples.get("parkgrid_edge_sign_up", []):
        if value != 1:
            failures.append(f"sign {labels.get('sign')} does not answer (not read back)")
    return failures


def read_health(listen: str, timeout_s: float = 3.0) -> tuple[dict[str, Any], str]:
    host, _, port = listen.rpartition(":")
    base = f"http://{host or '127.0.0.1'}:{port}"
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=timeout_s) as answer:
            healthz = json.loads(answer.read())
    except urllib.error.HTTPError as exc:  # 503: not ok, but the report is in the body
        healthz = json.loads(exc.read())
    with urllib.request.urlopen(f"{base}/metrics", timeout=timeout_s) as answer:
        metrics = answer.read().decode()
    return healthz, metrics


def gate_now(listen: str) -> list[str]:
    try:
        healthz, metrics = read_health(listen)
    except (OSError, ValueError) as exc:
        return [f"the box's health page at {listen} does not answer ({exc})"]
    return gate_failures(healthz, metrics)


def confirm(
    layout: Layout,
    listen: str,
    *,
    say: Callable[[str], None] = print,
    clock: Callable[[], float] = time.time,
    check: Callable[[str], list[str]] = gate_now,
) -> bool:
    """Confirm the release on trial once its gate passes; False when its time ran out."""
    state = layout.load()
    trial = state.trial
    if trial is None or trial.slot != layout.current_slot():
        say("confirm: no release on trial")
        return True
    deadline = (trial.since or clock()) + trial.confirm_within_s
    failures = check(listen)
    while failures and clock() < deadline:
        time.sleep(POLL_S)
        failures = check(listen)
    state = layout.load()  # the boot check may have written since
    if state.trial is None or state.trial.slot != trial.slot:
        say("confirm: the trial ended meanwhile")
        return True
    if failures:
        state.trial.gate_failed = "; ".join(failures)
        state.note("gate failed", trial.version, state.trial.gate_failed)
        layout.save(state)
        say(f"confirm: {trial.version} failed its health gate: {state.trial.gate_failed}")
        return False
    state.good, state.trial = trial.slot, None
    state.note("confirmed", trial.version, "health gate passed")
    layout.save(state)
    say(f"confirm: {trial.version} confirmed (broker, sensors, signs)")
    return True
