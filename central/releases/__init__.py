"""Release bundles at central: checked, stored by version, served to boxes (docs/fleet.md)."""
