"""Fault scenarios: real processes on loopback, real mosquitto, checks from central's store."""
