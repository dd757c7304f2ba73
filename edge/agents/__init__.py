"""edge.agents: occupancy and guidance, stall zones, uplink, health."""
