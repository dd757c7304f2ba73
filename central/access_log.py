"""Passing health checks out of the access log.

A load balancer asks every central process's ``/healthz`` every 2 s (deploy/haproxy): about
1,800 access-log lines an hour per process that bury the requests people made. A health
check that passed (status below 400) leaves no line; one that failed (503: the database or
the broker link down) does, and so does every other request. Attached to uvicorn's access
logger in the app's start-up, beside ``central.log_redaction``.
"""

from __future__ import annotations

import logging

HEALTH_PATH = "/healthz"


class QuietHealthChecks(logging.Filter):
    """Drops uvicorn access records of a ``/healthz`` that answered below 400."""

    def filter(self, record: logging.LogRecord) -> bool:
        # uvicorn's access record: (client, method, path with query, http version, status)
        args = record.args
        if not isinstance(args, tuple) or len(args) != 5:
            return True
        path, status = args[2], args[4]
        if not isinstance(path, str) or not isinstance(status, int):
            return True
        return not (path.partition("?")[0] == HEALTH_PATH and status < 400)


QUIET_HEALTH_CHECKS = QuietHealthChecks()
