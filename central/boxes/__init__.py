"""Boxes: liveness, health, watermark, and what they disagree with the site file about."""
