"""The box as a pipeline: the stages one box runs, each owning its state.

Readings flow from the serial lines through occupancy (``occupancy_stage``) to the lot board
(``lot_board``), and from there to the signs (``sign_stage``) on one side and the uplink on
the other. Beside them: stall zones (``zone_stage``), what other boxes say (``town_view``),
sensor and sign reports with their alerts (``sensor_notices``, ``sign_events``, ``alerts``),
the box's status and birth (``status``), its commands by table (``commands``) and its clock
loop (``ticker``). ``edge.runtime`` builds, wires, starts and supervises them; the picture is
in docs/architecture.md ("The box as a pipeline").
"""
