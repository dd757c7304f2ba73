"""The box's side of a release: A/B slots, ``edge update``, the boot check and the confirm.

``slots.py`` the layout under the prefix and the state file (atomic writes, the symlink swap),
``bundle.py`` a bundle read and verified into a staging folder, ``install.py`` the update's
steps, ``boot_check.py`` the decision made before every start, ``gate.py`` the health gate a
release on trial must pass to be confirmed, ``cli.py`` the commands (docs/fleet.md).
"""
