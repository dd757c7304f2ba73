"""The rollout's wire: central's ``install-release`` command and the box's release report."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from firmware_protocols.uplink.models import BoxStatus, Command, InstallRelease, ReleaseReport
from tests.firmware_protocols.test_uplink_models import birth

DIGEST = "sha256:" + "ab" * 32


def test_an_install_release_command_round_trips() -> None:
    command = Command(
        command_id=uuid.uuid4(),
        issued_at=datetime.now(UTC),
        body=InstallRelease(version="1.4.0", sha256=DIGEST, rollout=3),
    )
    again = Command.model_validate_json(command.model_dump_json())
    assert again.body == InstallRelease(version="1.4.0", sha256=DIGEST, rollout=3)
    assert again.name.value == "install-release"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("version", "../../etc/passwd"),
        ("version", "1.4.0 ; rm -rf /"),
        ("version", ""),
        ("sha256", "ab" * 32),
        ("sha256", "sha256:" + "AB" * 32),
        ("rollout", 0),
        ("confirm_within_s", 29),
        ("confirm_within_s", 3601),
        ("confirm_within_s", "soon"),
    ],
)
def test_an_install_release_refuses_a_bad_field(field: str, value: object) -> None:
    body = {"command": "install-release", "version": "1.4.0", "sha256": DIGEST, field: value}
    with pytest.raises(ValidationError) as refused:
        InstallRelease.model_validate(body)
    assert refused.value.errors()[0]["loc"] == (field,)


def test_the_trial_window_travels_with_the_install_within_its_bounds() -> None:
    base = {"command": "install-release", "version": "1.4.0", "sha256": DIGEST}
    assert InstallRelease.model_validate(base).confirm_within_s is None  # the box's default
    for seconds in (30, 90.5, 3600):
        body = InstallRelease.model_validate({**base, "confirm_within_s": seconds})
        assert body.confirm_within_s == seconds
        command = Command(command_id=uuid.uuid4(), issued_at=datetime.now(UTC), body=body)
        assert Command.model_validate_json(command.model_dump_json()).body == body


def test_a_birth_may_carry_a_rolled_back_release() -> None:
    report = ReleaseReport(
        version="1.3.0",
        state="rolled_back",
        failed_version="1.4.0",
        reason="the health gate did not pass within 120 s: broker not connected",
        ts=datetime.now(UTC),
    )
    status = birth().model_copy(update={"release": report})
    parsed = BoxStatus.model_validate_json(status.model_dump_json())
    assert parsed.release == report


def test_a_box_not_running_from_a_slot_reports_no_version() -> None:
    assert ReleaseReport(state="unmanaged", ts=datetime.now(UTC)).version is None
