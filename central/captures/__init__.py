"""Capture intake: camera pushes (Hikvision ISAPI, Dahua, parkgrid JSON) into the store."""
