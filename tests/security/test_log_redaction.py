"""No token in central's access log, however its name is spelt in the query (issue 14 item 8).

The app decodes a query parameter's name before it looks for ``access_token``, so
``access%5Ftoken`` and ``%61ccess_token`` are the token too; the access log prints the raw
URL. A real ``parkgrid central serve`` (info level, access log on) is sent the token in
every spelling the app accepts, and its whole output is searched for the token.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import QueryParams

from central.auth.models import Role
from central.auth.service import add_user
from central.db.engine import make_engine
from central.db.migrate import upgrade
from central.log_redaction import SECRET_PARAMETERS, redact_queries
from simulators.broker import free_port
from tests.central.helpers import SITE_FILE, http_status, wait_healthy
from tests.faults.rig import Proc, _python, record

PASSWORD = "redaction-test-pw"


def _spellings(name: str) -> list[str]:
    """Ways to write a parameter name that the app decodes to ``name``."""
    return [
        name,
        name.replace("_", "%5F"),
        name.replace("_", "%5f"),
        "%61" + name[1:],
        "".join(f"%{ord(c):02X}" for c in name),
        name[:3] + "%" + f"{ord(name[3]):02x}" + name[4:],
    ]


def test_access_log_never_prints_a_token_however_its_name_is_spelt(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'central.db'}"
    engine = make_engine(db_url)
    upgrade(engine)
    add_user(engine, username="ops", password=PASSWORD, role=Role.VIEWER, actor="t")
    engine.dispose()
    port = free_port()
    proc = Proc(
        argv=[
            *_python(), "central", "serve", "--site", str(SITE_FILE), "--database-url", db_url,
            "--no-ingest", "--host", "127.0.0.1", "--port", str(port), "--log-level", "info",
        ],
        log=tmp_path / "central.log",
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    proc.start()
    tokens: list[str] = []
    try:
        wait_healthy(url, lambda: proc.running, proc.tail)
        for spelling in _spellings("access_token"):
            data = urllib.parse.urlencode({"username": "ops", "password": PASSWORD}).encode()
            with urllib.request.urlopen(f"{url}/api/v1/auth/login", data=data, timeout=10) as r:
                token = json.loads(r.read())["access_token"]
            tokens.append(token)
            # The app accepts the token under this spelling: the check is not vacuous.
            assert http_status(f"{url}/api/v1/auth/me?{spelling}={token}") == 200, spelling
            alerts = f"{url}/api/v1/alerts?limit=1&{spelling}={token}&state=raised"
            assert http_status(alerts) == 200
    finally:
        proc.stop()
    log = proc.log.read_text(errors="replace")
    assert "GET /api/v1/auth/me?" in log, "the access log is on"
    leaks = [line for line in log.splitlines() if any(t in line for t in tokens)]
    assert not leaks, leaks
    assert log.count("=[redacted]") >= 2 * len(tokens)
    record(
        "hostile",
        "token in the access log (encoded parameter names)",
        {
            "attack": "send the token as access%5Ftoken, %61ccess_token, ... so the access "
            "log prints it",
            "tried": 2 * len(tokens),
            "refused": 2 * len(tokens),
            "notes": "names decoded as the app decodes them; a real central serve's output "
            "searched: no token",
        },
    )


NAME_CHARS = st.sampled_from(sorted(SECRET_PARAMETERS))


@st.composite
def _encoded(draw: st.DrawFn, name: str) -> str:
    """``name`` with any of its characters percent-encoded, in either case."""
    out = []
    for c in name:
        if draw(st.booleans()):
            code = f"{ord(c):02x}"
            out.append("%" + (code.upper() if draw(st.booleans()) else code))
        else:
            out.append(c)
    return "".join(out)


@given(
    data=st.data(),
    name=NAME_CHARS,
    secret=st.text(st.characters(codec="ascii", exclude_characters="&#% \r\n"), min_size=8),
    before=st.lists(st.sampled_from(["limit=1", "state=raised", "x=%3Cb%3E", "flag"])),
    after=st.lists(st.sampled_from(["limit=1", "lang=en", "y=", "next=%2Fdashboard%2F"])),
)
def test_redaction_finds_every_parameter_the_app_would_read_as_a_secret(
    data: st.DataObject, name: str, secret: str, before: list[str], after: list[str]
) -> None:
    """Whatever the app's own query parser reads as a secret parameter is redacted."""
    spelt = data.draw(_encoded(name))
    value = urllib.parse.quote(secret, safe="")
    query = "&".join([*before, f"{spelt}={value}", *after])
    assert QueryParams(query).get(name) == secret  # the app reads this as the secret
    line = f'127.0.0.1:5000 - "GET /api/v1/stream?{query} HTTP/1.1" 200'
    redacted = redact_queries(line)
    parts = redacted.split("?", 1)[1].removesuffix(' HTTP/1.1" 200').split("&")
    assert parts == [*before, f"{spelt}=[redacted]", *after]
