"""``parkgrid camera listen --port P``: commission a camera before it feeds the ledger.

A technician points the camera's push (Hikvision "notify surveillance center" / HTTP
listening, Dahua event upload or ITSAPI) at this machine and watches how parkgrid reads
each push: plate, colour, class, time and how it was read, skew from the receipt, lane,
direction, pictures; heartbeats counted; what was refused and why; enumeration values no
table knows. Nothing is stored. The same readers as central's intake are used
(``firmware_protocols.cameras``), so what this prints is what central will do.

::

    parkgrid camera listen --port 8099 [--kind auto|hikvision|dahua|parkgrid]
                           [--timezone Asia/Shanghai] [--max-skew-minutes 10]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from firmware_protocols.cameras import Reading, decode_parkgrid, read_dahua, read_hikvision
from firmware_protocols.errors import DecodeError
from parkgrid.camera_attach import add_parser as add_attach

MAX_BODY_BYTES = 32 * 1024 * 1024
KINDS = ("auto", "hikvision", "dahua", "parkgrid")


def configure(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="command", metavar="{listen,attach}")
    listen = commands.add_parser(
        "listen", help="receive a camera's pushes and print how each is read"
    )
    listen.add_argument("--port", type=int, required=True, help="TCP port the camera pushes to")
    listen.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all)")
    listen.add_argument("--kind", choices=KINDS, default="auto", help="the camera's vendor")
    listen.add_argument(
        "--timezone", default="Asia/Shanghai", help="the zone the camera's clock is set to"
    )
    listen.add_argument(
        "--max-skew-minutes", type=float, default=10.0, help="flag captures further off"
    )
    listen.set_defaults(handler=_listen)
    add_attach(commands)
    parser.set_defaults(handler=lambda _: (parser.print_help(sys.stderr), 2)[1])


def guess_kind(path: str, content_type: str | None, body: bytes) -> str:
    """The vendor of a push, from its path and first bytes."""
    lowered = path.lower()
    for kind in ("hikvision", "dahua", "parkgrid"):
        if kind in lowered:
            return kind
    if "notificationinfo" in lowered:
        return "dahua"
    head = body[:4096]
    if b"EventNotificationAlert" in head or b'"eventType"' in head:
        return "hikvision"
    if b'"camera_id"' in head:
        return "parkgrid"
    return "dahua"


def read_push(kind: str, body: bytes, content_type: str | None, tz: dt.tzinfo) -> Reading:
    if kind == "hikvision":
        return read_hikvision(body, content_type, assume_tz=tz)
    if kind == "dahua":
        return read_dahua(body, content_type, camera_tz=tz)
    return Reading(captures=(decode_parkgrid(body, content_type),))


def describe(reading: Reading, *, received_at: dt.datetime, max_skew_s: float) -> list[str]:
    """The lines a technician reads for one push."""
    lines = []
    for capture in reading.captures:
        skew = (capture.captured_at - received_at).total_seconds()
        flag = "  ** CAMERA CLOCK: would be held for a person **" if abs(skew) > max_skew_s else ""
        plate = capture.plate or "(no plate)"
        lines.append(
            f"  capture {capture.event_id}: plate {plate}"
            f"{'' if capture.plate_readable else ' (unreadable)'}"
            f" colour {capture.plate_color or '-'} class {capture.vehicle_class}"
            f" GA {capture.ga_plate_type or '-'} {capture.kind}"
        )
        when = capture.captured_at.astimezone(dt.UTC).isoformat()
        lines.append(f"    time {when} ({capture.time_basis or '-'}) skew {skew:+.0f} s{flag}")
        where = [f"lane {capture.lane}" if capture.lane is not None else "lane -"]
        if capture.direction:
            where.append(f"direction {capture.direction}")
        if capture.space:
            where.append(f"parking space {capture.space}")
        pictures = ", ".join(
            f"{p.name} ({p.kind}, {len(p.data or b'')} bytes)" for p in capture.pictures
        )
        lines.append(f"    {' '.join(where)}; pictures: {pictures or 'none'}")
        for field_name, value in capture.unmapped:
            lines.append(f"    UNMAPPED {field_name} {value!r}: no table knows it (class unknown)")
    for refusal in reading.refused:
        lines.append(f"  REFUSED {refusal.where}: {refusal.reason}")
    if reading.ignored:
        lines.append(f"  ignored (not plate events): {', '.join(reading.ignored)}")
    if reading.heartbeats:
        lines.append(f"  heartbeats: {reading.heartbeats}")
    if not lines:
        lines.append("  nothing in this push")
    return lines


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        out = bytearray()
        while True:
            size = int(handler.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                handler.rfile.readline()
                return bytes(out)
            out += handler.rfile.read(size)
            handler.rfile.readline()
            if len(out) > MAX_BODY_BYTES:
                raise DecodeError(f"body over {MAX_BODY_BYTES} bytes", fmt="http")
    length = int(handler.headers.get("Content-Length") or 0)
    if length > MAX_BODY_BYTES:
        raise DecodeError(f"body over {MAX_BODY_BYTES} bytes", fmt="http")
    return handler.rfile.read(length)


def make_handler(
    *, kind: str, tz: dt.tzinfo, max_skew_s: float, out: TextIO, clock: Callable[[], float]
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received = dt.datetime.fromtimestamp(clock(), dt.UTC)
            content_type = self.headers.get("Content-Type")
            summary: dict[str, Any]
            try:
                body = _read_body(self)
                vendor = kind if kind != "auto" else guess_kind(self.path, content_type, body)
                lines = [
                    f"{received:%H:%M:%S} push from {self.client_address[0]} {self.path} "
                    f"({content_type or 'no content type'}, {len(body)} bytes) read as {vendor}"
                ]
                reading = read_push(vendor, body, content_type, tz)
                lines += describe(reading, received_at=received, max_skew_s=max_skew_s)
                summary = {
                    "captures": len(reading.captures),
                    "refused": len(reading.refused),
                    "heartbeats": reading.heartbeats,
                }
            except (DecodeError, ValueError) as exc:
                reason = exc.reason if isinstance(exc, DecodeError) else str(exc)
                lines = [
                    f"{received:%H:%M:%S} push from {self.client_address[0]} {self.path}",
                    f"  REFUSED whole body: {reason}",
                ]
                summary = {"captures": 0, "refused": 1, "reason": reason}
            out.write("\n".join(lines) + "\n")
            out.flush()
            data = json.dumps(summary).encode()
            self.send_response(200)  # the camera is answered as central would accept it
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_PUT = do_POST

        def log_message(self, format: str, *args: Any) -> None:
            return  # the lines above are the log

    return Handler


def _listen(args: argparse.Namespace) -> int:
    try:
        tz = ZoneInfo(args.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        print(f"parkgrid camera listen: unknown time zone {args.timezone!r}", file=sys.stderr)
        return 2
    handler = make_handler(
        kind=args.kind,
        tz=tz,
        max_skew_s=args.max_skew_minutes * 60,
        out=sys.stdout,
        clock=time.time,
    )
    try:
        server = ThreadingHTTPServer((args.host, args.port), handler)
    except OSError as exc:
        print(
            f"parkgrid camera listen: cannot listen on {args.host}:{args.port}: {exc}",
            file=sys.stderr,
        )
        return 1
    print(
        f"listening on {args.host}:{args.port} for {args.kind} camera pushes "
        f"(camera clock in {args.timezone}, skew flagged over {args.max_skew_minutes:g} min); "
        "Ctrl-C stops",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
