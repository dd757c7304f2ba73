"""Capture intake's errors (HTTP status in the right column).

::

    CentralError
    ├── UnknownCamera       .camera_id                403
    └── WrongCameraKind     .camera_id, .kind, .sent  422
"""

from __future__ import annotations

from central.errors import CentralError


class UnknownCamera(CentralError):
    status = 403

    def __init__(self, camera_id: str) -> None:
        super().__init__(
            f"camera {camera_id!r} is not in the site file's [cameras] (the token's name must "
            "be the camera id)"
        )
        self.camera_id = camera_id


class WrongCameraKind(CentralError):
    status = 422

    def __init__(self, camera_id: str, kind: str, sent: str) -> None:
        super().__init__(f"camera {camera_id!r} is a {kind} camera, not {sent}")
        self.camera_id = camera_id
        self.kind = kind
        self.sent = sent
