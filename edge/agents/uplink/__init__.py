"""The box's MQTT uplink: ``Uplink`` (the agent) and ``UplinkStats`` (its figures).

The agent lives in ``agent.py``; this package keeps ``from edge.agents.uplink import Uplink``
working for the runtime, the benches and the tests.
"""

from edge.agents.uplink.agent import PAHO_MAX_MIDS, Uplink, UplinkStats

__all__ = ["PAHO_MAX_MIDS", "Uplink", "UplinkStats"]
