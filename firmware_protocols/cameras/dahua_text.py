"""Dahua's text event forms: ``key=value`` lines and the attach stream's ``Code=...;data=``.

Theory of operation
-------------------
Dahua's CGI interfaces do not always send JSON. ``snapManager.cgi?action=attachFileProc``
and older ``eventManager.cgi`` firmware describe an event as ``key=value`` lines whose keys
are paths into the event object::

    Events[0].EventBaseInfo.Code=TrafficJunction      (or Events[0].Code=...)
    Events[0].EventBaseInfo.Action=Pulse
    Events[0].GroupID=175706653
    Events[0].EventID=516
    Events[0].UTC=1706625295
    Events[0].TrafficCar.PlateNumber=浙A12345
    Events[0].TrafficCar.PlateColor=Yellow

:func:`parse_key_values` builds the nested object (``Events`` a list, ``[n]`` an index) and
:func:`events_from_key_values` turns each ``Events[n]`` into the ``{"Code", "Action",
"Data"}`` shape :mod:`dahua_event` reads: the fields beside ``Code`` are the ``Data``.

``eventManager.cgi?action=attach`` writes one event per stream part as one line of
``;``-separated ``key=value`` pairs whose last pair, ``data=``, is a JSON object (which may
run over many lines)::

    Code=TrafficJunction;action=Pulse;index=0;data={ ... }

and a keep-alive part that says ``Heartbeat``. All values are text; the event reader
accepts numeric text where it wants a number.
"""

from __future__ import annotations

import json
import re
from typing import Any

from firmware_protocols.errors import DecodeError

FMT = "dahua-text"
MAX_TEXT_BYTES = 256 * 1024
MAX_INDEX = 64
_STEP = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d{1,3})\])?$")


def is_heartbeat(data: bytes) -> bool:
    return data.strip().lower() in (b"heartbeat", b"heartbeat;")


def _decode(data: bytes) -> str:
    if len(data) > MAX_TEXT_BYTES:
        raise DecodeError(f"text event over {MAX_TEXT_BYTES} bytes", fmt=FMT, data=data[:64])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("gb18030", "replace")  # older Chinese firmware


def _put(root: dict[str, Any], path: str, value: str) -> None:
    node: Any = root
    steps = path.split(".")
    for depth, step in enumerate(steps):
        match = _STEP.match(step)
        if match is None:
            raise DecodeError(f"key {path!r} has an unusable step {step!r}", fmt=FMT)
        name, index = match.group(1), match.group(2)
        last = depth == len(steps) - 1
        if index is None:
            if last:
                node[name] = value
                return
            child = node.setdefault(name, {})
            if not isinstance(child, dict):
                raise DecodeError(f"key {path!r} mixes a value and an object", fmt=FMT)
            node = child
            continue
        position = int(index)
        if position >= MAX_INDEX:
            raise DecodeError(f"key {path!r}: index over {MAX_INDEX}", fmt=FMT)
        items = node.setdefault(name, [])
        if not isinstance(items, list):
            raise DecodeError(f"key {path!r} mixes a list and a value", fmt=FMT)
        while len(items) <= position:
            items.append({})
        if last:
            items[position] = value
            return
        if not isinstance(items[position], dict):
            raise DecodeError(f"key {path!r} mixes a value and an object", fmt=FMT)
        node = items[position]


def looks_like_key_values(data: bytes) -> bool:
    head = data.lstrip()[:200]
    return re.match(rb"^[A-Za-z_][A-Za-z0-9_]*(?:\[\d+\])?(?:\.[^=\r\n]+)?=", head) is not None


def parse_key_values(data: bytes) -> dict[str, Any]:
    """``a.b[0].c=v`` lines into a nested object; blank lines are skipped."""
    root: dict[str, Any] = {}
    for number, line in enumerate(_decode(data).splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if "=" not in line:
            raise DecodeError(f"line {number} is not key=value: {line[:40]!r}", fmt=FMT)
        key, value = line.split("=", 1)
        _put(root, key.strip(), value.strip())
    return root


def events_from_key_values(data: bytes) -> list[dict[str, Any]]:
    """Each ``Events[n]`` of a key=value body as ``{"Code", "Action", "Data"}``."""
    root = parse_key_values(data)
    events = root.get("Events")
    if not isinstance(events, list) or not events:
        raise DecodeError("key=value body without Events[n] entries", fmt=FMT)
    out = []
    for item in events:
        if not isinstance(item, dict):
            raise DecodeError("Events[n] is a value, not an object", fmt=FMT)
        base = item.get("EventBaseInfo")
        base = base if isinstance(base, dict) else {}
        data_fields = {k: v for k, v in item.items() if k not in ("EventBaseInfo", "Code")}
        out.append(
            {
                "Code": base.get("Code") or item.get("Code"),
                "Action": base.get("Action") or item.get("Action"),
                "Index": base.get("Index") or item.get("Index"),
                "Data": data_fields,
            }
        )
    return out


def is_attach_event(data: bytes) -> bool:
    return data.lstrip().startswith(b"Code=")


def attach_event(data: bytes) -> dict[str, Any]:
    """One ``Code=...;action=...;index=...;data={...}`` part as ``{"Code", "Action", "Data"}``."""
    text = _decode(data).strip()
    head, sep, tail = text.partition("data=")
    pairs: dict[str, str] = {}
    for item in head.split(";"):
        if "=" in item:
            key, value = item.split("=", 1)
            pairs[key.strip().lower()] = value.strip()
    body: Any = {}
    if sep:
        try:
            body = json.loads(tail)
        except json.JSONDecodeError as exc:
            raise DecodeError(f"attach event's data= is not JSON: {exc}", fmt=FMT) from None
        if not isinstance(body, dict):
            raise DecodeError("attach event's data= is not a JSON object", fmt=FMT)
    if not pairs.get("code"):
        raise DecodeError("attach event without Code=", fmt=FMT, data=data[:64])
    return {
        "Code": pairs["code"],
        "Action": pairs.get("action"),
        "Index": pairs.get("index"),
        "Data": body,
    }
