"""``parkgrid release ...``: build, sign and check the bundles boxes install (the office side).

``build.py`` makes a bundle from a checkout and the runtime lock, ``keys.py`` makes the
Ed25519 key pair and signs a bundle, ``cli.py`` is the command. The manifest's format and its
checks are ``firmware_protocols.release_manifest``, shared with the box (``edge.update``).
"""
