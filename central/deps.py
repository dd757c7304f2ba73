"""Every dependency a router may ask for, as ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine

from central.auth.models import Actor, Role
from central.context import Central
from central.errors import Forbidden, NotFound, OutOfTown, Unauthenticated

_bearer = HTTPBearer(auto_error=False, description="A token from POST /api/v1/auth/login")


TOWN_SCOPE = "parkgrid.town"  # the ASGI scope key ``central.towns.TownPaths`` sets
# What a town's staff may call outside their town's paths on a county central: themselves.
PERSONAL_PATHS = ("/api/v1/auth/me", "/api/v1/auth/logout")


def get_central(request: Request) -> Central:
    """The app's ``Central``, seen through the town the path names (``/api/v1/towns/{town}``
    or ``/towns/{town}``); without one, the whole deployment (a single town: that town)."""
    central: Central = request.app.state.central
    town = request.scope.get(TOWN_SCOPE)
    if town is None:
        return central
    if town not in central.towns:
        raise NotFound("town", town)
    return central.for_town(town)


CentralDep = Annotated[Central, Depends(get_central)]


def get_engine(central: CentralDep) -> Engine:
    return central.engine


EngineDep = Annotated[Engine, Depends(get_engine)]


def check_town(central: Central, actor: Actor, path: str) -> None:
    """OutOfTown unless ``actor`` may act where ``central`` (a town's view or the county's)
    looks: county staff (town None) anywhere, a town's staff and machines in their town."""
    if actor.town is None:
        return
    if central.town_id is None:  # the county as a whole
        if path in PERSONAL_PATHS:
            return
        raise OutOfTown(town=None, actor_town=actor.town)
    if actor.town != central.town_id:
        raise OutOfTown(town=central.town_id, actor_town=actor.town)


def current_actor(
    request: Request,
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
    actor = central.tokens.authenticate(central.engine, token)
    check_town(central, actor, request.url.path)
    return actor


def require(*roles: Role) -> Callable[[Actor], Actor]:
    def check(actor: Annotated[Actor, Depends(current_actor)]) -> Actor:
        if not any(actor.has(role) for role in roles):
            raise Forbidden(actor.role.value, tuple(r.value for r in roles))
        return actor

    return check


def require_county_admin(actor: Annotated[Actor, Depends(require(Role.ADMIN))]) -> Actor:
    """An admin of the whole deployment: managing users and tokens is theirs alone (a town's
    admin could otherwise make themselves county staff)."""
    if actor.town is not None:
        raise OutOfTown(town=None, actor_town=actor.town)
    return actor


def require_county_viewer(actor: Annotated[Actor, Depends(require(Role.VIEWER))]) -> Actor:
    """County staff (a viewer or above of the whole deployment)."""
    if actor.town is not None:
        raise OutOfTown(town=None, actor_town=actor.town)
    return actor


AnyActor = Annotated[Actor, Depends(current_actor)]
Viewer = Annotated[Actor, Depends(require(Role.VIEWER))]
Operator = Annotated[Actor, Depends(require(Role.OPERATOR))]
Admin = Annotated[Actor, Depends(require(Role.ADMIN))]
CountyAdmin = Annotated[Actor, Depends(require_county_admin)]
CountyViewer = Annotated[Actor, Depends(require_county_viewer)]
