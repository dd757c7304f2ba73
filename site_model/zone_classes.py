"""What a stall zone's class means by default: its grace, its escalation ladder, its notice.

The box applies these (``edge/config.py``) when its config leaves a zone's grace or ladder
out, and the config projection (``site_model/edge_config.py``) scales them when a town's
clock runs faster than the wall clock (the demo), so both read the one table.
"""

from __future__ import annotations

from typing import Literal

SeverityName = Literal["info", "warning", "escalated", "critical"]

# By class, strictest first: (grace_s, ladder of (seconds after the grace, severity)).
ZONE_CLASS_DEFAULTS: dict[str, tuple[float, tuple[tuple[float, SeverityName], ...]]] = {
    "prohibited": (60.0, ((0.0, "escalated"), (600.0, "critical"))),
    "controlled": (300.0, ((0.0, "warning"), (600.0, "escalated"))),
    "regulated": (900.0, ((0.0, "warning"), (1800.0, "escalated"))),
}

# How long before a zone closes its signs say it is closing soon.
CLOSING_SOON_S = 900.0
