"""What one connection of the box is made of, from its ``[mqtt]`` config: the broker, the
login, TLS, the in-flight window and the Last Will (a retained ``BoxStatus`` offline /
``connection_lost`` stamped with the connect time); and how a failed session is described."""

from __future__ import annotations

import ssl

from edge.agents.uplink.mqtt_link import LinkSettings, MqttLinkError
from edge.config import MqttConfig


def tls_context(mqtt: MqttConfig) -> ssl.SSLContext:
    """The box's TLS context: the town's CA (or the system's), and its client certificate."""
    context = ssl.create_default_context(cafile=str(mqtt.ca_file) if mqtt.ca_file else None)
    if mqtt.cert_file is not None and mqtt.key_file is not None:
        context.load_cert_chain(str(mqtt.cert_file), str(mqtt.key_file))
    return context


def link_settings(
    mqtt: MqttConfig, *, box_id: str, will_topic: str, will_payload: bytes, max_inflight: int
) -> LinkSettings:
    return LinkSettings(
        host=mqtt.host,
        port=mqtt.port,
        client_id=mqtt.client_id or f"parkgrid-{box_id}",
        username=mqtt.username,
        password=mqtt.password(),
        keepalive_s=mqtt.keepalive_s,
        tls_context=tls_context(mqtt) if mqtt.tls else None,
        will_topic=will_topic,
        will_payload=will_payload,
        max_inflight=max_inflight,
    )


def only_link_errors(exc: BaseException) -> bool:
    """Whether a session ended by the network or the broker only (no need for a stack)."""
    if isinstance(exc, BaseExceptionGroup):
        return all(only_link_errors(e) for e in exc.exceptions)
    return isinstance(exc, MqttLinkError | OSError)


def describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"
