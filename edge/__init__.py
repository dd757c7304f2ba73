"""edge: the box that runs in a car park or stall zone."""
