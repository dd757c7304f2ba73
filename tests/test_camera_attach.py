"""The attach relay's grouping without I/O: each event with the pictures after it."""

from __future__ import annotations

from firmware_protocols.cameras import read_dahua
from parkgrid.camera_attach import Counts, relay
from tests.firmware_protocols.camera_corpus import (
    JPEG_A,
    JPEG_B,
    STREAM_TYPE,
    attach_stream,
    sample,
    stream_part,
)


def _run(body: bytes, answer: bool = True) -> tuple[list[bytes], Counts, list[str]]:
    posted: list[bytes] = []
    lines: list[str] = []
    counts = Counts()

    def post(group: bytes) -> bool:
        posted.append(group)
        return answer

    chunks = [body[i : i + 97] for i in range(0, len(body), 97)]
    relay(chunks, STREAM_TYPE, post, counts=counts, say=lines.append)
    return posted, counts, lines


def test_each_event_is_posted_with_its_own_pictures() -> None:
    posted, counts, _ = _run(attach_stream())
    # the VideoMotion event is forwarded too: central says it is not a plate event
    assert counts.events == 4 and counts.heartbeats == 4 and counts.lost == 0
    readings = [read_dahua(g, "multipart/x-mixed-replace; boundary=parkgrid-relay") for g in posted]
    plates = [[c.plate for c in r.captures] for r in readings]
    assert plates == [["浙A12345"], [], ["浙B54321"], ["浙A12345"]]
    assert [len(r.captures[0].pictures) for r in readings if r.captures] == [1, 2, 1]
    assert readings[1].ignored == ("VideoMotion",)


def test_orphan_pictures_and_lost_posts_are_counted() -> None:
    body = stream_part("image/jpeg", JPEG_B)
    body += stream_part("text/plain", sample("dahua-attach-event.txt"))
    body += stream_part("image/jpeg", JPEG_A)
    posted, counts, lines = _run(body, answer=False)
    assert counts.orphan_pictures == 1 and counts.events == 1 and counts.lost == 1
    assert len(posted) == 1 and "a picture before any event" in lines[0]
