"""The ground floor beside ``firmware_protocols``: the town as typed data.

The site file (lots, bays, zones, signs, boxes, cameras) is read and checked here, and every
other package (the box, central, the simulators, the ``parkgrid`` command) reads the town from
it. Nothing here imports FastAPI, SQLAlchemy or any package above the ground floor, because a
box installs it.
"""
