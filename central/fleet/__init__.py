"""The fleet: each box's desired configuration, what it reports, and pushes (docs/fleet.md)."""
