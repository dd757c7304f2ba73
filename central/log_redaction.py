"""Secrets out of log lines: query parameters read the way the app reads them, then blanked.

EventSource clients cannot set headers, so the stream (and, as FastAPI declares it, every
route) takes its token in the query string, and uvicorn's access log prints the whole URL.
The app decodes a parameter's name before it looks it up (Starlette's ``parse_qsl``:
``+`` is a space, ``%XX`` a byte), so ``access%5Ftoken=`` and ``%61ccess_token=`` are the
token too. ``redact_queries`` decodes each name the same way and blanks the value of every
name in ``SECRET_PARAMETERS`` (compared without case), leaving the rest of the line as it
was; ``RedactSecrets`` applies it to a record's message and arguments.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_plus

# The token the app reads (access_token), and names a client might misuse for a secret.
SECRET_PARAMETERS = frozenset({"access_token", "token", "password", "secret", "api_key"})
REDACTED = "[redacted]"
_QUERY = re.compile(r"\?([^\s\"'<>]*)")


def _is_secret(raw_name: str) -> bool:
    return unquote_plus(raw_name, errors="replace").strip().lower() in SECRET_PARAMETERS


def redact_query(query: str) -> str:
    """A raw query string with the value of every secret parameter replaced."""
    parts = []
    for part in query.split("&"):
        name, sep, _ = part.partition("=")
        parts.append(f"{name}={REDACTED}" if sep and _is_secret(name) else part)
    return "&".join(parts)


def redact_queries(text: str) -> str:
    """``text`` with the query string of every URL in it redacted (see ``redact_query``)."""
    return _QUERY.sub(lambda m: "?" + redact_query(m.group(1)), text) if "?" in text else text


class RedactSecrets(logging.Filter):
    """Redacts query strings in a record's message and string arguments (uvicorn's access log)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_queries(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact_queries(record.msg)
        return True


REDACT_SECRETS = RedactSecrets()
