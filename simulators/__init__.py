"""simulators: every device parkgrid talks to, and the whole town, for tests and the demo."""
