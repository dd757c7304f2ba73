"""The drivers' board, built once per refresh and served as bytes to every phone.

The board is rebuilt only when the public lot figures change (``LotsCache``, one query per
refresh however many phones ask) or the local minute turns (stall zones open and close).
Each encoding (the JSON, each language's page) is kept ready, gzipped, with a strong ETag,
so a phone that already has the figures gets a 304 and nothing else.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter

from central.lots.models import LotsOut
from central.lots.service import LotsCache
from central.public.board import build_board
from site_model.site import Site

_LOTS = TypeAdapter(LotsOut)


@dataclass(frozen=True, slots=True)
class Encoded:
    """One answer, ready to send: plain and gzipped bytes and their ETag."""

    body: bytes
    gzipped: bytes
    etag: str

    @classmethod
    def of(cls, body: bytes) -> Encoded:
        digest = hashlib.blake2b(body, digest_size=12).hexdigest()
        return cls(body=body, gzipped=gzip.compress(body, mtime=0), etag=f'"{digest}"')


class BoardCache:
    """The current board and its encodings; ``render(board, lang)`` makes a page's HTML."""

    def __init__(
        self,
        lots: LotsCache,
        site: Site,
        *,
        render: Callable[[dict[str, Any], str], str],
        clock: Callable[[], float] = time.time,
        forecasts: Callable[[], dict[str, Any]] | None = None,
        to_town: Callable[[float], float] | None = None,
    ) -> None:
        self.lots = lots
        self.site = site
        self.render = render
        self.clock = clock
        self.forecasts = forecasts
        self.to_town = to_town
        self.zone = ZoneInfo(site.site.timezone)
        self._lock = threading.Lock()
        self._key: tuple[bytes, str, int] | None = None
        self.board: dict[str, Any] = {}
        self._json: Encoded | None = None
        self._pages: dict[str, Encoded] = {}
        self.builds = 0

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock(), self.zone)

    def _refresh(self) -> None:
        raw = self.lots.all()  # bytes; the lots cache runs its one query when stale
        now = self._now()
        forecasts = self.forecasts() if self.forecasts is not None else {}
        fkey = hash(json.dumps(forecasts, sort_keys=True, default=str))
        key = (raw, now.strftime("%Y-%m-%dT%H:%M"), fkey)
        with self._lock:
            if key == self._key:
                return
            lots = _LOTS.validate_json(raw).lots
            self.board = build_board(lots, self.site, now, forecasts, to_town=self.to_town)
            body = json.dumps(self.board, ensure_ascii=False, separators=(",", ":")).encode()
            self._json = Encoded.of(body)
            self._pages = {}
            self._key = key
            self.builds += 1

    def json(self) -> Encoded:
        self._refresh()
        assert self._json is not None
        return self._json

    def page(self, lang: str) -> Encoded:
        self._refresh()
        with self._lock:
            found = self._pages.get(lang)
            if found is None:
                found = Encoded.of(self.render(self.board, lang).encode())
                self._pages[lang] = found
            return found
