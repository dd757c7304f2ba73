"""``deploy/systemd/parkgrid-central@.service`` and its environment file, checked as written.

systemd's own checker reads an instance of the template (``parkgrid-central@8001``), with
only the program's path moved to this checkout's (the unit names the installed one); the
command line it runs parses as ``parkgrid central serve`` with the instance's port; the
environment file's settings are all settings central knows, and HAProxy's server lines name
the ports the unit's instances are started with in the docs.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from central.settings import CentralSettings
from parkgrid.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "systemd" / "parkgrid-central@.service"
ENV = ROOT / "deploy" / "systemd" / "central.env.example"
HAPROXY = ROOT / "deploy" / "haproxy" / "haproxy.cfg"


def _exec_start(text: str) -> list[str]:
    joined = text.replace("\\\n", " ")
    line = next(x for x in joined.splitlines() if x.startswith("ExecStart="))
    return shlex.split(line.split("=", 1)[1])


def test_central_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is missing (Debian: systemd)")
    program = Path(sys.executable).with_name("parkgrid")
    assert program.exists(), program
    unit = tmp_path / "parkgrid-central@.service"
    unit.write_text(
        UNIT.read_text(encoding="utf-8").replace(
            "/opt/parkgrid/current/bin/parkgrid", str(program)
        ),
        encoding="utf-8",
    )
    instance = tmp_path / "parkgrid-central@8001.service"
    instance.symlink_to(unit)
    done = subprocess.run(
        [analyze, "verify", "--man=no", str(instance)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Only the unit's own lines count: the host's other units are not ours to judge.
    ours = [line for line in done.stderr.splitlines() if "parkgrid-central@" in line]
    assert not ours, done.stderr


def test_central_unit_command_line_is_a_serve_on_the_instance_port() -> None:
    argv = _exec_start(UNIT.read_text(encoding="utf-8"))
    assert argv[0] == "/opt/parkgrid/current/bin/parkgrid"
    args = [a.replace("%i", "8001").replace("%H", "host") for a in argv[1:]]
    parsed = build_parser(args).parse_args(args)
    assert (parsed.group, parsed.central_command) == ("central", "serve"), parsed
    assert (parsed.host, parsed.port, parsed.instance) == ("127.0.0.1", 8001, "host-8001")
    assert parsed.ingest_group == "ingest"


def test_central_env_file_names_only_central_settings() -> None:
    known = {f"PARKGRID_{name.upper()}" for name in CentralSettings.model_fields}
    names = [
        line.split("=", 1)[0]
        for line in ENV.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    ]
    assert names and not [n for n in names if n not in known], names
    # The processes must not each migrate: the owner role does, once.
    assert "PARKGRID_MIGRATE_ON_START=false" in ENV.read_text(encoding="utf-8")


def test_balancer_servers_are_the_documented_instances() -> None:
    ports = re.findall(r"server c\d 127\.0\.0\.1:(\d+)", HAPROXY.read_text(encoding="utf-8"))
    assert sorted(set(ports)) == ["8001", "8002"]
    assert "parkgrid-central@8001 parkgrid-central@8002" in UNIT.read_text(encoding="utf-8")
