"""``parkgrid camera attach``: relay a Dahua camera's attach stream to central, event by event.

Dahua's ``eventManager.cgi?action=attach`` (and ``snapManager.cgi``) is not a push: the
client opens one GET and the camera answers with a stream that never ends. This relay
opens it (with the camera's user and password, Digest or Basic as the camera asks), splits
it as it arrives (:class:`~firmware_protocols.cameras.stream_splitter.StreamSplitter`),
groups each event part with the JPEG parts that follow it, and posts each group to
central's ``/api/v1/cameras/dahua`` as a small stream of its own, with the camera's token:
central stores one capture per event with its pictures. A group is sent when the next
event or heartbeat arrives (ask the camera for ``heartbeat=5`` so a lone event waits no
longer than that) or when the stream ends.

It reconnects to a camera that drops the stream, and retries a post central does not
answer for ``--retry-s`` before it says the event is lost. Each line it prints says what
was forwarded, what central answered, and what was refused.

::

    parkgrid camera attach \\
        --url 'http://10.0.0.9/cgi-bin/eventManager.cgi?action=attach&codes=[All]&heartbeat=5' \\
        --user admin --password ... --central https://central:8000 --token-file cam.token
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from firmware_protocols.cameras.dahua_text import is_heartbeat
from firmware_protocols.cameras.multipart import Part
from firmware_protocols.cameras.stream_splitter import StreamSplitter

BOUNDARY = "parkgrid-relay"
CHUNK = 64 * 1024


@dataclass
class Counts:
    events: int = 0
    heartbeats: int = 0
    orphan_pictures: int = 0
    lost: int = 0


def group_body(parts: list[Part]) -> bytes:
    """Parts as a ``multipart/x-mixed-replace; boundary=parkgrid-relay`` body."""
    out = b""
    for part in parts:
        head = f"--{BOUNDARY}\r\nContent-Type: {part.content_type}\r\n"
        out += (head + f"Content-Length: {len(part.data)}\r\n\r\n").encode() + part.data + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def relay(
    chunks: Iterable[bytes],
    content_type: str,
    post: Callable[[bytes], bool],
    *,
    counts: Counts,
    say: Callable[[str], None],
) -> None:
    """Split a stream and post each event with its pictures (``post`` True when sent)."""
    splitter = StreamSplitter(content_type)
    group: list[Part] = []

    def flush() -> None:
        if not group:
            return
        counts.events += 1
        if not post(group_body(group)):
            counts.lost += 1
        group.clear()

    for chunk in chunks:
        for part in splitter.feed(chunk):
            if part.content_type.startswith("image/"):
                if group:
                    group.append(part)
                else:
                    counts.orphan_pictures += 1
                    say("  a picture before any event: not forwarded")
            elif is_heartbeat(part.data):
                counts.heartbeats += 1
                flush()
            else:
                flush()
                group.append(part)
    flush()
    if splitter.dropped or splitter.oversize:
        say(f"  stream noise skipped: {splitter.dropped} bytes, {splitter.oversize} oversize parts")


def camera_stream(url: str, user: str | None, password: str | None) -> tuple[str, Iterator[bytes]]:
    """Open the attach GET; its Content-Type and its bytes as they arrive."""
    handlers: list[Any] = []
    if user is not None:
        passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
        passwords.add_password(None, url, user, password or "")
        handlers += [
            urllib.request.HTTPDigestAuthHandler(passwords),
            urllib.request.HTTPBasicAuthHandler(passwords),
        ]
    response = urllib.request.build_opener(*handlers).open(url, timeout=60)
    content_type = response.headers.get("Content-Type", "")

    def read() -> Iterator[bytes]:
        with response:
            while chunk := response.read1(CHUNK):
                yield chunk

    return content_type, read()


def poster(
    central: str, token: str, *, retry_s: float, say: Callable[[str], None]
) -> Callable[[bytes], bool]:
    url = central.rstrip("/") + "/api/v1/cameras/dahua"

    def post(body: bytes) -> bool:
        deadline = time.monotonic() + retry_s
        pause = 0.5
        while True:
            request = urllib.request.Request(
                url,
                data=body,
                method="POST",
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}",
                },
            )
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    answer = json.loads(response.read() or b"{}")
                    say(_summary(response.status, answer))
                    return True
            except urllib.error.HTTPError as exc:
                detail = exc.read()[:300].decode("utf-8", "replace")
                if exc.code < 500:  # central read it and refused it: retrying will not help
                    say(f"  central refused the event ({exc.code}): {detail}")
                    return True
                reason = f"{exc.code} {detail}"
            except (urllib.error.URLError, OSError) as exc:
                reason = str(exc)
            if time.monotonic() + pause > deadline:
                say(f"  LOST: central did not take the event for {retry_s:g} s ({reason})")
                return False
            time.sleep(pause)
            pause = min(pause * 2, 10.0)

    return post


def _summary(status: int, answer: dict[str, Any]) -> str:
    lines = []
    for capture in answer.get("captures", []):
        held = " HELD (camera clock)" if capture.get("held") else ""
        again = " (repeat)" if capture.get("duplicate") else ""
        lines.append(
            f"  -> {status} capture {capture.get('capture_id')}: {capture.get('plate') or '-'}"
            f" {capture.get('vehicle_class', '')}, {len(capture.get('pictures', []))} pictures"
            f"{held}{again}"
        )
    for refusal in answer.get("refused", []):
        lines.append(f"  -> refused {refusal.get('where')}: {refusal.get('reason')}")
    for code in answer.get("ignored", []):
        lines.append(f"  -> ignored {code} (not a plate event)")
    return "\n".join(lines) or f"  -> {status}"


def _token(args: argparse.Namespace) -> str | None:
    if args.token_file is not None:
        return Path(args.token_file).read_text().strip()
    return os.environ.get("PARKGRID_CAMERA_TOKEN")


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    token = _token(args)
    if not token:
        print("camera attach: give --token-file or PARKGRID_CAMERA_TOKEN", file=sys.stderr)
        return 2

    def say(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    post = poster(args.central, token, retry_s=args.retry_s, say=say)
    counts = Counts()
    while True:
        try:
            content_type, chunks = camera_stream(args.url, args.user, args.password)
            say(f"attached to {args.url} ({content_type})")
            relay(chunks, content_type, post, counts=counts, say=say)
            say("the camera ended the stream")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            say(f"camera stream failed: {exc}")
        except Exception as exc:  # a DecodeError from a stream that is not a stream
            say(f"camera stream unreadable: {exc}")
        say(
            f"events {counts.events}, heartbeats {counts.heartbeats}, lost {counts.lost}; "
            f"reconnecting in {args.reconnect_s:g} s"
        )
        if args.once:
            return 0 if counts.lost == 0 else 1
        time.sleep(args.reconnect_s)


def add_parser(commands: Any) -> None:
    attach = commands.add_parser(
        "attach", help="relay a Dahua camera's eventManager.cgi attach stream to central"
    )
    attach.add_argument("--url", required=True, help="the camera's attach URL")
    attach.add_argument("--user", help="the camera's user (Digest or Basic, as it asks)")
    attach.add_argument("--password", help="the camera's password")
    attach.add_argument("--central", required=True, help="central's base URL")
    attach.add_argument("--token-file", help="the camera's token (else env PARKGRID_CAMERA_TOKEN)")
    attach.add_argument("--retry-s", type=float, default=60.0, help="retry a post this long")
    attach.add_argument("--reconnect-s", type=float, default=5.0, help="pause before reconnecting")
    attach.add_argument("--once", action="store_true", help="stop when the stream ends")
    attach.set_defaults(handler=run)
