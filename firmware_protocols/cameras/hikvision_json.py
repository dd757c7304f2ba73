"""Hikvision's ISAPI JSON alert, turned into the element tree the XML reader reads.

Theory of operation
-------------------
Newer Hikvision firmware (and its "HTTP listening" alarm-server upload) can send the same
``EventNotificationAlert`` as JSON: the same names, objects for elements, arrays for
repeated children::

    {"ipAddress": "192.168.1.64", "dateTime": "2025-03-01T16:00:00+08:00",
     "eventType": "ANPR", "eventState": "active", "UUID": "...",
     "ANPR": {"licensePlate": "苏A8HK52", "line": 1, "direction": "forward",
              "pictureInfoList": [{"fileName": "...", "type": "licensePlatePicture",
                                   "pId": "..."}]},
     "VehicleGATInfo": {"plateTypeByGAT": "02"}}

:func:`json_alert` builds an ``EventNotificationAlert`` element from it (an array under
``xxxList`` becomes ``xxx`` children), so one reader serves both. The document is capped in
size and depth before it is built.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

from firmware_protocols.errors import DecodeError

FMT = "hikvision-isapi-json"
MAX_JSON_BYTES = 256 * 1024
MAX_DEPTH = 12


def _fill(node: ET.Element, value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise DecodeError(f"JSON alert nested over {MAX_DEPTH} levels", fmt=FMT)
    if isinstance(value, dict):
        for key, item in value.items():
            name = str(key)
            if isinstance(item, list):
                holder = ET.SubElement(node, name)
                child_name = name[:-4] if name.endswith("List") and len(name) > 4 else name
                for entry in item:
                    _fill(ET.SubElement(holder, child_name), entry, depth + 1)
            else:
                _fill(ET.SubElement(node, name), item, depth + 1)
    elif value is not None and not isinstance(value, list):
        node.text = str(value).lower() if isinstance(value, bool) else str(value)


def json_alert(data: bytes) -> ET.Element:
    """The JSON alert as an ``EventNotificationAlert`` element."""
    if len(data) > MAX_JSON_BYTES:
        raise DecodeError(f"JSON alert over {MAX_JSON_BYTES} bytes", fmt=FMT, data=data[:64])
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DecodeError(f"malformed JSON: {exc}", fmt=FMT, data=data[:64]) from None
    if isinstance(doc, dict) and isinstance(doc.get("EventNotificationAlert"), dict):
        doc = doc["EventNotificationAlert"]
    if not isinstance(doc, dict):
        raise DecodeError("the JSON alert is not an object", fmt=FMT, data=data[:64])
    root = ET.Element("EventNotificationAlert")
    _fill(root, doc, 0)
    return root
