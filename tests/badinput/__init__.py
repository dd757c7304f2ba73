"""Bad input: central's HTTP API under schemathesis, malformed MQTT, camera bodies, config files."""
