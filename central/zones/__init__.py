"""Stall zones: their live schedule state and their bays."""
