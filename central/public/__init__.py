"""The drivers' side: the public page at ``/`` (docs/drivers.md), built from public figures."""

from central.public.router import mount

__all__ = ["mount"]
