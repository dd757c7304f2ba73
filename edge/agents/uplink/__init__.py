"""The box's MQTT uplink: ``Uplink`` (the agent, ``agent.py``) and ``UplinkStats`` (its
figures, ``stats.py``); ``from edge.agents.uplink import Uplink`` keeps working for the
runtime, the benches and the tests.
"""

from edge.agents.uplink.agent import PAHO_MAX_MIDS, Uplink
from edge.agents.uplink.stats import UplinkStats

__all__ = ["PAHO_MAX_MIDS", "Uplink", "UplinkStats"]
