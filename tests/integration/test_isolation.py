"""Tenants are separated completely: a walk over every route with a second person's token."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from litestar.testing import TestClient

from tests.conftest import Person

PUBLIC = {
    ("/api/health", "GET"),
    ("/api/auth/guest", "POST"),
    ("/api/auth/register", "POST"),
    ("/api/auth/login", "POST"),
}


def api_routes(client: TestClient[Any]) -> list[tuple[str, str]]:
    out = []
    for route in client.app.routes:
        if not route.path.startswith("/api"):
            continue
        for method in sorted(getattr(route, "methods", set()) - {"OPTIONS", "HEAD"}):
            out.append((route.path, method))
    return out


def fill(path: str, values: dict[str, str]) -> str:
    def value(m: re.Match[str]) -> str:
        return values.get(m.group(1), "1" if m.group(2) == ":int" else "abcd1234")

    return re.sub(r"\{(\w+)(:\w+)?\}", value, path)


def test_every_api_route_is_walked(client: TestClient[Any]) -> None:
    # Guards the walk below: a route added later must be covered by it.
    paths = {p for p, _ in api_routes(client)}
    assert "/api/projects/{project_id:uuid}" in paths
    assert len(api_routes(client)) >= 25


def test_no_route_answers_without_a_token(client: TestClient[Any]) -> None:
    for path, method in api_routes(client):
        if (path, method) in PUBLIC or path == "/api/auth/register":
            continue
        r = client.request(
            method, fill(path, {"project_id": "00000000-0000-4000-8000-000000000000"}), json={}
        )
        assert r.status_code == 401, (method, path, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")


def normalized(text: str, *ids: str) -> str:
    for value in ids:
        text = text.replace(value, "ID")
    return re.sub(r'"request_id":"[0-9a-f]+"', "", text)


def test_a_second_person_gets_nothing_of_the_first(
    client: TestClient[Any], user_factory: Callable[..., Person]
) -> None:
    alice, mallory = user_factory("Alice"), user_factory("Mallory")
    secret_name = "Alice Secret Documentary"
    project = client.post(
        "/api/projects", headers=alice.headers, json={"name": secret_name, "description": "classified"}
    ).json()
    unknown = "00000000-0000-4000-8000-000000000000"
    bodies: dict[str, Any] = {
        "/api/projects/bulk": {"action": "export", "ids": ["{project_id}"]},
        "/api/projects/{project_id:uuid}/members": {"email": mallory.user["email"], "role": "owner"},
        "/api/projects/{project_id:uuid}": {"name": "pwned", "archived": True},
        "/api/projects/{project_id:uuid}/tasks": {"kind": "project.export", "params": {}},
    }
    # Signing out or erasing Mallory would end the walk early: those come last.
    routes = sorted(
        api_routes(client), key=lambda r: r in {("/api/auth/logout", "POST"), ("/api/me", "DELETE")}
    )
    for path, method in routes:
        if (path, method) in PUBLIC:
            continue
        answers = []
        takes_id = "{project_id" in path or path == "/api/projects/bulk"
        for pid in (project["id"], unknown) if takes_id else (project["id"],):
            values = {"project_id": pid, "member_id": alice.user["id"]}
            body = {k: [pid] if v == ["{project_id}"] else v for k, v in bodies.get(path, {}).items()}
            r = client.request(method, fill(path, values), headers=mallory.headers, json=body)
            assert secret_name not in r.text, (method, path)
            assert "classified" not in r.text, (method, path)
            assert alice.user["email"] not in r.text, (method, path)
            answers.append((r.status_code, normalized(r.text, pid, alice.user["id"])))
        if takes_id:
            # Alice's project is indistinguishable from one that does not exist.
            assert answers[0] == answers[1], (method, path, answers)
            assert answers[0][0] == 404, (method, path, answers[0])
    # Alice's project is untouched by all of that.
    mine = client.get(f"/api/projects/{project['id']}", headers=alice.headers).json()
    assert (mine["name"], mine["archived"], mine["deleted_at"]) == (secret_name, False, None)
    members = client.get(f"/api/projects/{project['id']}/members", headers=alice.headers).json()
    assert [m["user"]["name"] for m in members] == ["Alice"]
    assert client.get("/api/projects", headers=alice.headers).json()["total"] == 1


def test_a_second_persons_list_and_search_are_empty(
    client: TestClient[Any], user_factory: Callable[..., Person]
) -> None:
    alice, mallory = user_factory("Alice"), user_factory("Mallory")
    client.post("/api/projects", headers=alice.headers, json={"name": "Alice Secret Documentary"})
    assert client.get("/api/projects", headers=mallory.headers).json() == {"items": [], "total": 0}
    assert client.get("/api/projects", headers=mallory.headers, params={"q": "Secret"}).json()["total"] == 0
    assert client.get("/api/projects/trash", headers=mallory.headers).json() == []
