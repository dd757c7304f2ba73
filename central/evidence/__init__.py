"""Evidence pictures, content-addressed by SHA-256 behind a small interface."""

from central.evidence.store import DiskPictureStore, PictureStore, picture_store_for

__all__ = ["DiskPictureStore", "PictureStore", "picture_store_for"]
