"""Lots and their bays: live figures, history, the open-data views."""
