"""Every dependency a router may ask for, as ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine

from central.auth.models import Actor, Role
from central.context import Central
from central.errors import Forbidden, Unauthenticated

_bearer = HTTPBearer(auto_error=False, description="A token from POST /api/v1/auth/login")


def get_central(request: Request) -> Central:
    central: Central = request.app.state.central
    return central


CentralDep = Annotated[Central, Depends(get_central)]


def get_engine(central: CentralDep) -> Engine:
    return central.engine


EngineDep = Annotated[Engine, Depends(get_engine)]


def current_actor(
    central: CentralDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    access_token: Annotated[
        str | None,
        Query(description="The token, for clients that cannot set headers (EventSource)."),
    ] = None,
) -> Actor:
    token = credentials.credentials if credentials is not None else access_token
    if not token:
        raise Unauthenticated("this needs a bearer token (POST /api/v1/auth/login)")
    return central.tokens.authenticate(central.engine, token)


def require(*roles: Role) -> Callable[[Actor], Actor]:
    def check(actor: Annotated[Actor, Depends(current_actor)]) -> Actor:
        if not any(actor.has(role) for role in roles):
            raise Forbidden(actor.role.value, tuple(r.value for r in roles))
        return actor

    return check


AnyActor = Annotated[Actor, Depends(current_actor)]
Viewer = Annotated[Actor, Depends(require(Role.VIEWER))]
Operator = Annotated[Actor, Depends(require(Role.OPERATOR))]
Admin = Annotated[Actor, Depends(require(Role.ADMIN))]
