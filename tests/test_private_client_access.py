"""No module of the box, central or the simulators reaches another object's ``._client``.

The box once took aiomqtt's private paho client (``client._client``) and patched it, which
pinned aiomqtt below 2.6 (issue 19 finding 4). A library's client is used through its public
API only; an object's own ``self._client`` is its business.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHECKED = ("edge", "central", "simulators", "parkgrid", "firmware_protocols", "site_model")


def foreign_client_access(source: str, filename: str) -> list[str]:
    """``file:line`` of every ``x._client`` or ``getattr(x, "_client")`` where ``x`` is not
    ``self`` or ``cls``."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Attribute) and node.attr == "_client":
            owner: ast.expr = node.value
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "getattr"
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and node.args[1].value == "_client"
        ):
            owner = node.args[0]
        else:
            continue
        if not (isinstance(owner, ast.Name) and owner.id in {"self", "cls"}):
            found.append(f"{filename}:{node.lineno}")
    return found


def test_the_check_finds_a_foreign_client_and_allows_its_own() -> None:
    source = (
        "class Link:\n"
        "    def own(self):\n"
        "        return self._client.publish\n"
        "def reach(client):\n"
        "    return client._client\n"
        "def chain(box):\n"
        "    return box.uplink._client.socket()\n"
        "def by_name(client):\n"
        "    return getattr(client, '_client')\n"
    )
    assert sorted(foreign_client_access(source, "m.py")) == ["m.py:5", "m.py:7", "m.py:9"]


def test_no_module_reaches_another_objects_private_client() -> None:
    offenders = [
        where
        for package in CHECKED
        for path in sorted((REPO / package).rglob("*.py"))
        for where in foreign_client_access(
            path.read_text(encoding="utf-8"), str(path.relative_to(REPO))
        )
    ]
    assert offenders == []
