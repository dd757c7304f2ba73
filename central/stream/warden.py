"""The live streams' warden: every few seconds, the tokens behind this process's open
streams read again in one query, and the streams of each that is no longer good ended.

A stream's token can stop being good while the stream is open: it expires, an admin
revokes it or disables its user (in this process or another; logout ends its streams at
once, ``Hub.end_token``). Each stream used to ask the token cache itself every
``RECHECK_S``: with 300 screens that was 60 hops a second to a worker thread and a query
per token every few seconds, more of the serving process's CPU than sending the figures
(py-spy, docs/scale.md). The warden asks once for the distinct tokens of every open stream
and ends the streams of those refused, with the refusal as the ``end`` event's reason. ::

    every RECHECK_S:  hub.token_hashes() --one SELECT--> TokenCache.check_many
                                                           | each refused token
                                                           v
                                              hub.end_token(digest, reason)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from central.leases.job import LeasedJob

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from central.auth.service import TokenCache
    from central.stream.hub import Hub

RECHECK_S = 5.0  # how long a stream may outlive its token's authority, at most


def check_streams(hub: Hub, tokens: TokenCache, engine: Engine) -> int:
    """One round: end the streams of every token no longer good; how many tokens."""
    refused = tokens.check_many(engine, hub.token_hashes())
    for digest, reason in refused.items():
        hub.end_token(digest, reason)
    return len(refused)


def start_warden(hub: Hub, tokens: TokenCache, engine: Engine) -> LeasedJob:
    """The round every ``RECHECK_S`` in its own thread, in every process (each holds its
    own streams)."""
    return LeasedJob(
        "stream-warden", lambda: check_streams(hub, tokens, engine), interval_s=RECHECK_S
    ).start()
