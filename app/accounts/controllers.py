"""Sign-in routes and the person's own account (GDPR export and erasure)."""

from __future__ import annotations

import asyncio
from typing import Any, TypedDict, cast

from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT
from pydantic import BaseModel, Field

from app.accounts.handover import hand_over_guest
from app.accounts.service import HandedOver, User
from app.deps import Services, authenticate, bearer_token, client_ip


class RegisterIn(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=1024)
    name: str = Field(max_length=200)


class LoginIn(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=1024)


class UserOut(TypedDict):
    id: str
    name: str
    email: str | None
    guest: bool


class AuthOut(TypedDict):
    token: str
    user: UserOut
    from_guest: HandedOver | None


class AuthController(Controller):
    path = "/api/auth"
    tags = ["auth"]

    @post("/guest", sync_to_thread=True, summary="Start as a guest: no form, no email")
    def guest(
        self,
        request: Request[Any, Any, Any],
        svc: NamedDependency[Services],
    ) -> dict[str, Any]:
        user, token = svc.accounts.create_guest(client_ip(request))
        if svc.accounts.studio.settings.seed_samples:
            svc.projects.seed_samples(user)
        return {"token": token, "user": user.public()}

    @post("/register", sync_to_thread=True, summary="Create an account (a guest keeps its projects)")
    def register(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[RegisterIn],
        maybe_user: NamedDependency[User | None],
        svc: NamedDependency[Services],
    ) -> dict[str, Any]:
        user, token = svc.accounts.register(
            data.email, data.password, data.name, maybe_user, client_ip(request)
        )
        if maybe_user is None and svc.accounts.studio.settings.seed_samples:
            svc.projects.seed_samples(user)
        return {"token": token, "user": user.public()}

    @post(
        "/login",
        status_code=HTTP_200_OK,
        summary="Sign in; a guest signing in (its token sent) hands its projects over to the account",
        description=(
            "Sent with a guest's `Authorization: Bearer` token, the guest's projects, tasks and "
            "activity become the account's in one transaction and the guest is retired (its tokens "
            "stop working); `from_guest` says what moved. Untouched copies of the sample projects "
            "go to the trash instead. Without a guest token, `from_guest` is null."
        ),
    )
    async def login(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[LoginIn],
        maybe_user: NamedDependency[User | None],
        svc: NamedDependency[Services],
    ) -> AuthOut:
        ip = client_ip(request)
        user = await asyncio.to_thread(svc.accounts.check_password, data.email, data.password, ip)
        handed: HandedOver | None = None
        if maybe_user is not None and maybe_user.guest and maybe_user.id != user.id:
            handed = await hand_over_guest(svc, maybe_user, user, ip)
            svc.rooms.reauthorise()  # the guest's sign-in is gone: its open sockets close (4401)
        token = await asyncio.to_thread(svc.accounts.issue_token, user.id)
        return {"token": token, "user": cast("UserOut", user.public()), "from_guest": handed}

    @post("/logout", before_request=authenticate, sync_to_thread=False, status_code=HTTP_204_NO_CONTENT)
    def logout(
        self, request: Request[Any, Any, Any], user: NamedDependency[User], svc: NamedDependency[Services]
    ) -> None:
        svc.accounts.logout(bearer_token(request), user, client_ip(request))
        svc.rooms.reauthorise()  # this sign-in's open sync sockets close (4401)


class MeController(Controller):
    path = "/api/me"
    tags = ["account"]
    before_request = staticmethod(authenticate)

    @get("/", sync_to_thread=False)
    def me(self, user: NamedDependency[User]) -> dict[str, Any]:
        return user.public()

    @get("/export", sync_to_thread=True, summary="Download everything the studio holds about you")
    def export(self, user: NamedDependency[User], svc: NamedDependency[Services]) -> dict[str, Any]:
        return svc.accounts.export_data(user)

    @delete(
        "/",
        status_code=HTTP_204_NO_CONTENT,
        summary="Delete your account; projects you alone own go to the trash",
    )
    async def erase(
        self,
        request: Request[Any, Any, Any],
        user: NamedDependency[User],
        svc: NamedDependency[Services],
    ) -> None:
        for project_id in svc.projects.sole_owned(user):
            await svc.rooms.evict(project_id)  # commit and close live rooms before their folders move
        trashed = await asyncio.to_thread(svc.projects.forget_user, user)
        await asyncio.to_thread(svc.accounts.delete_account, user, client_ip(request), trashed)
        svc.rooms.reauthorise()  # their sockets on projects shared with others close (4401)
