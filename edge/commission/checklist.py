"""doctor's checklist items: their keys and titles, and one item's result."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

CHECKS: dict[str, str] = {
    "config": "config valid",
    "serial": "serial devices exist and are readable",
    "sensors": "every mapped sensor heard",
    "signs": "every sign answers",
    "broker": "broker reachable with these credentials",
    "tls": "TLS certificates valid, not expiring within 30 days",
    "clock": "clock synchronised",
    "disk": "disk space for the outbox",
}
SHOWN_MAX = 12


class Status(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    key: str
    status: Status
    detail: str
    fix: str = ""

    @property
    def title(self) -> str:
        return CHECKS[self.key]

    def as_json(self) -> dict[str, str]:
        return {
            "key": self.key,
            "title": self.title,
            "status": self.status.value,
            "detail": self.detail,
            "fix": self.fix,
        }


def passed(key: str, detail: str) -> CheckResult:
    return CheckResult(key=key, status=Status.PASS, detail=detail)


def failed(key: str, detail: str, fix: str) -> CheckResult:
    return CheckResult(key=key, status=Status.FAIL, detail=detail, fix=fix)


def skipped(key: str, detail: str) -> CheckResult:
    return CheckResult(key=key, status=Status.SKIP, detail=detail)


def listed(items: list[str]) -> str:
    more = f" and {len(items) - SHOWN_MAX} more" if len(items) > SHOWN_MAX else ""
    return ", ".join(items[:SHOWN_MAX]) + more
