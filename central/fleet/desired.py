"""A box's desired configuration: the site file's projection (``site_model.edge_config``,
the one ``provision-box`` writes) cut to the office's part (``site_model.site_config``),
with every bay id of the box's lots and zones and every sign's display."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import tomli_w

from site_model.edge_config import DEFAULT_BOX_ETC, Deployment, office_part
from site_model.site import Site
from site_model.site_config import digest, section_digests


@dataclass(frozen=True, slots=True)
class Desired:
    box_id: str
    document: dict[str, Any]
    toml: str
    hash: str
    sections: dict[str, str]


def desired_for(site: Site, box_id: str, *, mqtt_url: str) -> Desired:
    """What ``box_id`` should run; ``mqtt_url`` is the broker as the boxes reach it."""
    part = office_part(site, box_id, Deployment(mqtt_url=mqtt_url, box_etc=DEFAULT_BOX_ETC))
    return Desired(box_id, part, tomli_w.dumps(part), digest(part), section_digests(part))
