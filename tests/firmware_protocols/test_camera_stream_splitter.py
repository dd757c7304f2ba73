"""The incremental stream splitter: any chunking gives the same parts, garbage is counted."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_protocols.cameras.multipart import parse_stream
from firmware_protocols.cameras.stream_splitter import StreamSplitter
from tests.firmware_protocols.camera_corpus import JPEG_A, STREAM_TYPE, attach_stream, stream_part


def _whole() -> list[tuple[str, bytes]]:
    parts, tail = parse_stream(attach_stream(), STREAM_TYPE)
    assert tail == b""
    return [(p.content_type, p.data) for p in parts]


def _split(body: bytes, sizes: list[int]) -> tuple[list[tuple[str, bytes]], StreamSplitter]:
    splitter = StreamSplitter(STREAM_TYPE)
    out = []
    pos = 0
    for size in [*sizes, len(body)]:
        out += [(p.content_type, p.data) for p in splitter.feed(body[pos : pos + size])]
        pos += size
        if pos >= len(body):
            break
    return out, splitter


def test_byte_by_byte_gives_the_whole_parts() -> None:
    body = attach_stream()
    parts, splitter = _split(body, [1] * len(body))
    assert parts == _whole() and len(parts) == 12
    assert splitter.dropped == 0
    assert parts[2] == ("image/jpeg", JPEG_A)  # its delimiter-like line did not cut it


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=700), max_size=60))
def test_any_chunking_gives_the_same_parts(sizes: list[int]) -> None:
    assert _split(attach_stream(), sizes)[0] == _whole()


def test_garbage_and_oversize_parts_are_skipped_and_counted() -> None:
    splitter = StreamSplitter(STREAM_TYPE, max_part_bytes=100)
    body = b"HTTP junk before the first delimiter\r\n" + stream_part("image/jpeg", b"\xff" * 500)
    body += stream_part("text/plain", b"Heartbeat")
    parts = splitter.feed(body)
    assert [(p.content_type, p.data) for p in parts] == [("text/plain", b"Heartbeat")]
    assert splitter.oversize == 1 and splitter.dropped > 500


def test_a_part_is_returned_only_when_whole() -> None:
    splitter = StreamSplitter(STREAM_TYPE)
    part = stream_part("image/jpeg", JPEG_A)
    assert splitter.feed(part[:-10]) == []
    assert [p.data for p in splitter.feed(part[-10:])] == [JPEG_A]
