"""Alerts raised by boxes: list, acknowledge, resolve."""
