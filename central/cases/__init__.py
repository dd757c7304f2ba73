"""Cases routed to the grids: alerts and tow orders that need a person, in a closed loop."""
