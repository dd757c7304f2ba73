"""Ingest: MQTT in (``mqtt``), batches into the store (``service``), acks out (``watermark``)."""
