from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool

from central.auth import service
from central.auth.models import (
    MACHINE_ROLES,
    MachineTokenIn,
    Me,
    Role,
    TokenId,
    TokenInfo,
    TokenOut,
    UserIn,
    Username,
    UserOut,
    UserPatch,
)
from central.context import Central
from central.deps import AnyActor, CentralDep, CountyAdmin
from central.errors import Invalid

router = APIRouter(prefix="/api/v1", tags=["auth"])


@router.post(
    "/auth/login",
    response_model=TokenOut,
    responses={
        401: {"description": "Wrong user name or password"},
        429: {"description": "Too many failed attempts"},
        503: {"description": "Too many logins at once; retry after Retry-After seconds"},
    },
    summary="Exchange a user name and password for a bearer token (OAuth2 password form)",
)
async def login(
    request: Request,
    central: CentralDep,
    username: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=200)],
) -> TokenOut:
    client = request.client.host if request.client else "unknown"
    # Counted before anything waits (a refused guess costs nothing), then the password
    # check waits its turn on the event loop: a waiting login holds no worker thread.
    central.throttle.reserve(service.login_keys(username, client))
    async with central.passwords.turn():
        token, expires, role = await run_in_threadpool(
            service.check_login,
            central.engine,
            username=username,
            password=password,
            client=client,
            throttle=central.throttle,
            passwords=central.passwords,
            ttl_s=central.settings.token_ttl_s,
        )
    return TokenOut(access_token=token, expires_at=service.iso(expires), role=role)


@router.post("/auth/logout", status_code=204, summary="Revoke the token used for this call")
def logout(central: CentralDep, actor: AnyActor) -> None:
    service.revoke(central.engine, digest=actor.token_hash, actor=actor.label)
    central.tokens.forget(actor.token_hash)
    central.hub.end_token(actor.token_hash, "logged out")


@router.get("/auth/me", response_model=Me, summary="Who the token belongs to")
def me(actor: AnyActor) -> Me:
    kind = "user" if actor.user_id else "token"
    return Me(name=actor.name, role=actor.role, kind=kind, town=actor.town)


def _known_town(central: Central, town: str | None) -> str | None:
    """``town`` if this central serves it (None: county-wide); else 422 naming the field."""
    if town is not None and town not in central.towns:
        known = ", ".join(sorted(central.towns))
        raise Invalid(f"town {town!r} is not served here (towns: {known})", field="town")
    return town


@router.post(
    "/auth/tokens",
    response_model=TokenOut,
    status_code=201,
    summary="Issue a machine token (camera, box)",
)
def machine_token(body: MachineTokenIn, central: CentralDep, actor: CountyAdmin) -> TokenOut:
    if body.role not in MACHINE_ROLES:
        raise Invalid("a machine token's role is camera or box", field="role")
    token, expires = service.issue_token(
        central.engine,
        name=body.name,
        role=body.role,
        ttl_s=body.ttl_days * 86400,
        actor=actor.label,
        town=_known_town(central, body.town),
    )
    return TokenOut(access_token=token, expires_at=service.iso(expires), role=body.role)


@router.get("/users", response_model=list[UserOut], summary="Users")
def users(central: CentralDep, _: CountyAdmin) -> list[UserOut]:
    return [
        UserOut(**{**row, "created_at": service.iso(row["created_at"]), "role": Role(row["role"])})
        for row in service.list_users(central.engine)
    ]


@router.post("/users", response_model=UserOut, status_code=201, summary="Add a user")
def add_user(body: UserIn, central: CentralDep, actor: CountyAdmin) -> UserOut:
    service.add_user(
        central.engine,
        username=body.username,
        password=body.password,
        role=body.role,
        actor=actor.label,
        passwords=central.passwords,
        town=_known_town(central, body.town),
    )
    row = next(u for u in service.list_users(central.engine) if u["username"] == body.username)
    return UserOut(
        **{**row, "created_at": service.iso(row["created_at"]), "role": Role(row["role"])}
    )


@router.patch(
    "/users/{username}",
    response_model=UserOut,
    responses={
        404: {"description": "No such user"},
        409: {"description": "The last enabled admin cannot be disabled or demoted"},
    },
    summary="Disable or enable a user, or change their role (ends their sessions)",
)
def update_user(
    username: Username, body: UserPatch, central: CentralDep, actor: CountyAdmin
) -> UserOut:
    revoked = service.update_user(
        central.engine,
        username=username,
        actor=actor.label,
        disabled=body.disabled,
        role=body.role,
    )
    reason = "user disabled" if body.disabled else "role changed; log in again"
    for digest in revoked:  # their cached tokens and open streams end now
        central.tokens.forget(digest)
        central.hub.end_token(digest, reason)
    row = next(u for u in service.list_users(central.engine) if u["username"] == username)
    return UserOut(
        **{**row, "created_at": service.iso(row["created_at"]), "role": Role(row["role"])}
    )


@router.get("/auth/tokens", response_model=list[TokenInfo], summary="Live tokens (admin)")
def tokens(central: CentralDep, _: CountyAdmin) -> list[TokenInfo]:
    return [
        TokenInfo(
            **{
                **row,
                "role": Role(row["role"]),
                "created_at": service.iso(row["created_at"]),
                "expires_at": service.iso(row["expires_at"]),
            }
        )
        for row in service.list_tokens(central.engine)
    ]


@router.delete(
    "/auth/tokens/{token_id}",
    status_code=204,
    responses={404: {"description": "No live token with this id"}},
    summary="Revoke a token (a leaked machine token, a session): at once",
)
def revoke_token(token_id: TokenId, central: CentralDep, actor: CountyAdmin) -> None:
    digest = service.revoke_by_id(central.engine, token_id=token_id, actor=actor.label)
    central.tokens.forget(digest)
    central.hub.end_token(digest, "token revoked by an admin")
