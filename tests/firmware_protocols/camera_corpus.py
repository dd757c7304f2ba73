"""The conformance corpus (tests/fixtures/cameras/) and the bodies cameras wrap it in."""

from __future__ import annotations

from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "cameras"
JPEG_A = b"\xff\xd8\xff\xe0event-a-scene\r\n--myboundary-lookalike\xff\xd9"
JPEG_B = b"\xff\xd8\xff\xe0event-b-scene\xff\xd9"
JPEG_C = b"\xff\xd8\xff\xe0event-c-plate\xff\xd9"
STREAM_TYPE = "multipart/x-mixed-replace; boundary=myboundary"


def sample(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def stream_part(content_type: str, data: bytes) -> bytes:
    """One part of a Dahua stream as the camera writes it (length, data, an extra CRLF)."""
    head = f"--myboundary\r\nContent-Type: {content_type}\r\nContent-Length: {len(data)}\r\n\r\n"
    return head.encode() + data + b"\r\n\r\n"


def heartbeat() -> bytes:
    return stream_part("text/plain", b"Heartbeat")


def attach_stream() -> bytes:
    """``eventManager.cgi?action=attach``: 3 plate events, heartbeats, a motion event, JPEGs.

    Event 1 (JSON notifyEventStream, slag truck) has one picture, event 2 (attach text) two,
    event 3 (key=value) one; the stream ends open, as a live stream does.
    """
    return b"".join(
        [
            heartbeat(),
            stream_part("application/json", sample("dahua-notifyEventStream-itc.json")),
            stream_part("image/jpeg", JPEG_A),
            heartbeat(),
            stream_part(
                "text/plain", b'Code=VideoMotion;action=Start;index=0;data={"RegionName":["R1"]}'
            ),
            stream_part("text/plain", sample("dahua-attach-event.txt")),
            stream_part("image/jpeg", JPEG_B),
            stream_part("image/jpeg", JPEG_C),
            heartbeat(),
            stream_part("text/plain", sample("dahua-snapmanager-events.txt")),
            stream_part("image/jpeg", JPEG_A + b"-3"),
            heartbeat(),
        ]
    )


def hik_pid_multipart(xml: bytes | None = None) -> tuple[bytes, str]:
    """The iDS-2CD7A46G0 way: the file name of a picture part is its pId (the part headers
    quoted in maciej-or/hikvision_next#117), or the part is named by its pId alone."""
    xml = xml if xml is not None else sample("hikvision-anpr-cn-pid.xml")
    parts = [
        ('name="anpr.xml"; filename="anpr.xml"', "text/xml", xml),
        (
            'name="licensePlatePicture.jpg"; filename="2023081115023616000te10ogXYgPlate"',
            "image/jpeg",
            JPEG_C,
        ),
        ('name="2023081115023616000te10ogXYgScene"', "image/jpeg", JPEG_B),
    ]
    out = b""
    for disposition, ctype, data in parts:
        out += (
            f"--boundary\r\nContent-Disposition: form-data; {disposition}\r\n"
            f"Content-Type: {ctype}\r\nContent-Length: {len(data)}\r\n\r\n"
        ).encode()
        out += data + b"\r\n"
    return out + b"--boundary--\r\n", "multipart/form-data; boundary=boundary"
