"""parkgrid's wire formats: bytes in, typed values out, and back. No I/O of any kind.

Modules:
    sensors       vendor ground-sensor payloads (registry of decoders, ``decode()``)
    m77           the 433 MHz receivers' ASCII poll/answer protocol
    concentrator  parkgrid's binary serial envelope and its streaming decoder
    signs         declarative Modbus register maps of the LED signs
    uplink        MQTT topic scheme and JSON payload models, version 1
    errors        the error hierarchy shared by all of them
"""
