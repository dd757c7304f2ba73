"""The demo's broker in the field configuration: the town provisioned as a town is.

Every box gets what ``parkgrid central provision-box --password-file --acl-file`` gives it
(``central.provision``): a password of its own (in its folder, 0600), its line in the
broker's password file and its block in the ACL, central's user first. Mosquitto reads
those files as they are; the embedded amqtt broker gets the same users and the same
publish/subscribe lists in its own formats. Either refuses anonymous clients.
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CENTRAL_MQTT_USER = "central"


@dataclass
class TownAccess:
    """The users the demo made, and the broker files that hold them."""

    broker_dir: Path
    central_password: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    box_passwords: dict[str, str] = field(default_factory=dict)

    @property
    def password_file(self) -> Path:
        return self.broker_dir / "passwd"

    @property
    def acl_file(self) -> Path:
        return self.broker_dir / "acl"

    def central_env(self) -> dict[str, str]:
        """Central's MQTT user, in the environment ``parkgrid central serve`` reads."""
        return {
            "PARKGRID_MQTT_USERNAME": CENTRAL_MQTT_USER,
            "PARKGRID_MQTT_PASSWORD": self.central_password,
        }

    def provision(self, site: Any, box_dirs: dict[str, Path]) -> None:
        """Provision every box of ``site`` (its password file goes in ``box_dirs[box]``)."""
        from central.provision import (
            password_line,
            provision_box,
            upsert_acl,
            upsert_password,
            write_secret,
        )

        self.broker_dir.mkdir(parents=True, exist_ok=True)
        line = password_line(CENTRAL_MQTT_USER, self.central_password)
        upsert_password(self.password_file, line=line)
        for box_id in site.boxes:
            box_dir = box_dirs[box_id]
            box_dir.mkdir(parents=True, exist_ok=True)
            done = provision_box(
                site, box_id, mqtt_url="mqtt://127.0.0.1:1883", box_etc=str(box_dir)
            )
            self.box_passwords[box_id] = done.password
            write_secret(box_dir / "mqtt-password", done.password + "\n")
            upsert_password(self.password_file, line=done.password_line)
            upsert_acl(
                self.acl_file, box_block=done.acl, box_id=box_id, central_user=CENTRAL_MQTT_USER
            )

    def mosquitto_config(self) -> list[str]:
        """Mosquitto's lines for these files. Started as root, mosquitto would drop to its
        own user, which cannot read the run folder: it stays root here."""
        as_root = ["user root"] if os.geteuid() == 0 else []
        return [f"password_file {self.password_file}", f"acl_file {self.acl_file}", *as_root]

    def embedded_files(self, site: Any) -> dict[str, Path]:
        """The same users and lists for amqtt (``EmbeddedBroker`` keyword arguments)."""
        from central.provision import box_access, central_access
        from simulators.embedded_broker import write_access

        accesses = [central_access(CENTRAL_MQTT_USER)]
        accesses += [box_access(site.id, box_id) for box_id in site.boxes]
        passwd, acl = write_access(
            self.broker_dir,
            passwords={CENTRAL_MQTT_USER: self.central_password, **self.box_passwords},
            publish={a.user: list(a.writes) for a in accesses},
            subscribe={a.user: list(a.reads) for a in accesses},
        )
        return {"password_file": passwd, "acl_file": acl}


def start_field_broker(access: TownAccess, site: Any, *, embedded: bool) -> tuple[Any, str]:
    """Mosquitto when this machine has it (unless ``embedded``), else amqtt, each with the
    users and ACL of ``access``; returns the started broker and a note for the terminal."""
    from simulators.broker import MosquittoBroker
    from simulators.embedded_broker import EmbeddedBroker

    has_mosquitto = shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists()
    if has_mosquitto and not embedded:
        mosquitto = MosquittoBroker(
            workdir=access.broker_dir, allow_anonymous=False, extra_config=access.mosquitto_config()
        )
        return mosquitto.start(), ""
    # Pure Python, MQTT 3.1.1: central speaks 3.1.1 since the demo sets no ingest group.
    amqtt = EmbeddedBroker(
        workdir=access.broker_dir, allow_anonymous=False, **access.embedded_files(site)
    ).start()
    why = "--embedded-broker" if embedded else "no mosquitto here"
    return amqtt, f"broker: embedded amqtt at {amqtt.url} ({why})"
