"""Central's domain errors; only routers (through ``app``'s handlers) turn them into HTTP.

::

    CentralError                 .status, .detail
    ├── NotFound                 .what, .id              404
    ├── Conflict                                         409
    ├── Invalid                  .field                  422
    ├── Unauthenticated                                  401
    ├── Forbidden                .role, .needed          403
    │   └── OutOfTown            .town, .actor_town      403 (a county's town scope)
    ├── TooManyAttempts          .retry_after_s          429
    └── Unavailable              .what                   503
"""

from __future__ import annotations


class CentralError(Exception):
    status = 500

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(CentralError):
    status = 404

    def __init__(self, what: str, id: str) -> None:
        super().__init__(f"no {what} {id!r}")
        self.what = what
        self.id = id


class Conflict(CentralError):
    status = 409


class Invalid(CentralError):
    status = 422

    def __init__(self, detail: str, *, field: str) -> None:
        super().__init__(detail)
        self.field = field


class Unauthenticated(CentralError):
    status = 401


class Forbidden(CentralError):
    status = 403

    def __init__(self, role: str, needed: tuple[str, ...]) -> None:
        super().__init__(f"role {role!r} may not do this (needs {' or '.join(needed)})")
        self.role = role
        self.needed = needed


class OutOfTown(Forbidden):
    """403: the actor belongs to one town of a county and asked for another (or for the
    whole county). ``town``: the town asked for (None: the county); ``actor_town``: its own."""

    def __init__(self, *, town: str | None, actor_town: str) -> None:
        CentralError.__init__(
            self,
            f"this token acts in town {actor_town!r} only, not in "
            + (f"town {town!r}" if town is not None else "the whole county")
            + f"; use /api/v1/towns/{actor_town}/...",
        )
        self.role = f"staff of {actor_town}"
        self.needed = (f"staff of {town}" if town is not None else "county staff",)
        self.town = town
        self.actor_town = actor_town


class TooManyAttempts(CentralError):
    status = 429

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"too many failed logins; try again in {retry_after_s:.0f} s")
        self.retry_after_s = retry_after_s


class Unavailable(CentralError):
    status = 503

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} is not available right now")
        self.what = what
