"""Accounts, tokens, roles, the audit log and GDPR, over the API against a real SQLite file."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from litestar.testing import TestClient

from app.settings import Settings
from tests.conftest import Person


def audit_actions(settings: Settings) -> list[str]:
    with sqlite3.connect(settings.db_path) as db:
        return [r[0] for r in db.execute("SELECT action FROM audit ORDER BY id")]


def test_guest_mode_needs_no_form(client: TestClient[Any]) -> None:
    r = client.post("/api/auth/guest")
    assert r.status_code == 201
    body = r.json()
    assert body["user"]["guest"] is True
    assert body["user"]["name"].startswith("Guest ")
    assert len(body["token"]) >= 40
    assert (
        client.get("/api/me", headers={"Authorization": f"Bearer {body['token']}"}).json()["id"]
        == body["user"]["id"]
    )


def test_tokens_and_passwords_are_never_stored_in_clear(
    client: TestClient[Any], user_factory: Callable[..., Person], settings: Settings
) -> None:
    person = user_factory()
    raw = settings.db_path.read_bytes() + settings.db_path.with_name("studio.db-wal").read_bytes()
    assert person.token.encode() not in raw
    assert b"correct horse battery" not in raw
    with sqlite3.connect(settings.db_path) as db:
        (pw_hash,) = db.execute(
            "SELECT password_hash FROM users WHERE id = ?", [person.user["id"]]
        ).fetchone()
    assert pw_hash.startswith("$argon2id$")


def test_register_login_logout(client: TestClient[Any], settings: Settings) -> None:
    body = {"email": "Ana@Example.org", "password": "a long enough secret", "name": "Ana"}
    r = client.post("/api/auth/register", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["user"] == {
        "id": r.json()["user"]["id"],
        "name": "Ana",
        "email": "ana@example.org",
        "guest": False,
    }
    assert client.post("/api/auth/register", json=body).status_code == 409
    r = client.post("/api/auth/login", json={"email": "ana@example.org", "password": "a long enough secret"})
    assert r.status_code == 200
    token = r.json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/projects", headers=headers).status_code == 200
    assert client.post("/api/auth/logout", headers=headers).status_code == 204
    r = client.get("/api/projects", headers=headers)
    assert r.status_code == 401
    assert "revoked" in r.json()["detail"]
    r = client.post("/api/auth/login", json={"email": "ana@example.org", "password": "wrong password!"})
    assert r.status_code == 401
    assert r.json()["detail"] == "Wrong email or password."
    r = client.post("/api/auth/login", json={"email": "nobody@example.org", "password": "wrong password!"})
    assert r.json()["detail"] == "Wrong email or password."
    assert audit_actions(settings) == [
        "account.registered", "auth.login", "auth.logout", "auth.login_failed", "auth.login_failed",
    ]  # fmt: skip


def test_registration_input_is_checked(client: TestClient[Any], settings: Settings) -> None:
    cases = [
        ({"email": "not-an-email", "password": "long enough pw", "name": "A"}, "email"),
        ({"email": "a@example.org", "password": "short", "name": "A"}, "password"),
        ({"email": "a@example.org", "password": "long enough pw", "name": ""}, "name"),
        ({"email": "a@example.org", "password": 12345678901, "name": "A"}, "password"),
        ({"email": "a@example.org"}, "password"),
    ]
    for body, field in cases:
        r = client.post("/api/auth/register", json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert field in r.json()["detail"]
    with sqlite3.connect(settings.db_path) as db:
        assert db.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 0


def test_a_guest_registers_and_keeps_its_projects(client: TestClient[Any], guest: Person) -> None:
    r = client.post("/api/projects", headers=guest.headers, json={"name": "Guest Film"})
    project_id = r.json()["id"]
    r = client.post("/api/auth/register", headers=guest.headers,
                    json={"email": "g@example.org", "password": "now I am real", "name": "Gina"})  # fmt: skip
    assert r.status_code == 201
    assert r.json()["user"]["id"] == guest.user["id"]
    assert r.json()["user"]["guest"] is False
    r = client.post("/api/auth/login", json={"email": "g@example.org", "password": "now I am real"})
    headers = {"Authorization": f"Bearer {r.json()['token']}"}
    assert [p["id"] for p in client.get("/api/projects", headers=headers).json()["items"]] == [project_id]


def test_roles_decide_what_members_may_do(
    client: TestClient[Any], user_factory: Callable[..., Person], settings: Settings
) -> None:
    owner, editor, viewer, outsider = (user_factory(n) for n in ("Olga", "Ed", "Vi", "Otto"))
    pid = client.post("/api/projects", headers=owner.headers, json={"name": "Shared"}).json()["id"]
    for person, role in ((editor, "editor"), (viewer, "viewer")):
        r = client.post(f"/api/projects/{pid}/members", headers=owner.headers,
                        json={"email": person.user["email"], "role": role})  # fmt: skip
        assert r.status_code == 200, r.text
    assert client.get(f"/api/projects/{pid}", headers=viewer.headers).json()["role"] == "viewer"
    r = client.patch(f"/api/projects/{pid}", headers=viewer.headers, json={"name": "Mine now"})
    assert r.status_code == 403
    assert "viewer" in r.json()["detail"]
    assert (
        client.patch(f"/api/projects/{pid}", headers=editor.headers, json={"name": "Edited"}).status_code
        == 200
    )
    assert client.delete(f"/api/projects/{pid}", headers=editor.headers).status_code == 403
    r = client.post(f"/api/projects/{pid}/members", headers=editor.headers,
                    json={"email": outsider.user["email"], "role": "owner"})  # fmt: skip
    assert r.status_code == 403
    assert client.get(f"/api/projects/{pid}", headers=outsider.headers).status_code == 404
    members = client.get(f"/api/projects/{pid}/members", headers=viewer.headers).json()
    assert {m["user"]["name"]: m["role"] for m in members} == {
        "Olga": "owner",
        "Ed": "editor",
        "Vi": "viewer",
    }
    r = client.post(f"/api/projects/{pid}/members", headers=owner.headers,
                    json={"email": owner.user["email"], "role": "viewer"})  # fmt: skip
    assert r.status_code == 409
    r = client.post(
        f"/api/projects/{pid}/members",
        headers=owner.headers,
        json={"email": "ghost@example.org", "role": "viewer"},
    )
    assert r.status_code == 404
    assert (
        client.delete(f"/api/projects/{pid}/members/{viewer.user['id']}", headers=owner.headers).status_code
        == 204
    )
    assert client.get(f"/api/projects/{pid}", headers=viewer.headers).status_code == 404
    assert audit_actions(settings).count("member.role_changed") == 2
    assert "member.removed" in audit_actions(settings)


def test_gdpr_export_and_erasure(
    client: TestClient[Any], user_factory: Callable[..., Person], settings: Settings
) -> None:
    alice, bob = user_factory("Alice"), user_factory("Bob")
    solo = client.post("/api/projects", headers=alice.headers, json={"name": "Alone"}).json()
    shared = client.post("/api/projects", headers=alice.headers, json={"name": "Together"}).json()
    client.post(
        f"/api/projects/{shared['id']}/members",
        headers=alice.headers,
        json={"email": bob.user["email"], "role": "owner"},
    )
    data = client.get("/api/me/export", headers=alice.headers).json()
    assert data["user"]["email"] == alice.user["email"]
    assert sorted(m["name"] for m in data["memberships"]) == ["Alone", "Together"]
    assert any(a["action"] == "account.registered" for a in data["audit"])
    assert "hash" not in str(data["tokens"])
    assert client.delete("/api/me", headers=alice.headers).status_code == 204
    assert client.get("/api/me", headers=alice.headers).status_code == 401
    r = client.post(
        "/api/auth/login", json={"email": alice.user["email"], "password": "correct horse battery"}
    )
    assert r.status_code == 401
    # The project she alone owned went to the trash; the shared one lives on with Bob.
    assert not (settings.workspace_root / solo["path"]).exists()
    assert list((settings.workspace_root / ".trash").iterdir())
    assert client.get(f"/api/projects/{shared['id']}", headers=bob.headers).status_code == 200
    assert "account.deleted" in audit_actions(settings)


def test_new_accounts_get_the_two_sample_projects(tmp_path: Any) -> None:
    from app.main import create_app
    from tests.conftest import BASE, make_settings

    with TestClient(create_app(make_settings(tmp_path, STUDIO_SEED_SAMPLES=True)), base_url=BASE) as c:
        token = c.post("/api/auth/guest").json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        items = c.get("/api/projects", headers=headers, params={"sort": "name"}).json()["items"]
        assert [(p["name"], p["template"]) for p in items] == [
            ("Lost Property", "save-the-cat"),
            ("Low Tide", "three-act"),
        ]
        state = c.get(f"/api/projects/{items[1]['id']}/state", headers=headers).json()
        assert len(state["story"]["scenes"]) >= 6
        assert len(state["canvases"]["main"]["nodes"]) >= 5
        assert len(state["chat"]) >= 4
        assert state["story"]["acts"]["act-1"]["share"] == 25
        found = c.get("/api/projects", headers=headers, params={"q": "causeway"}).json()["items"]
        assert [p["name"] for p in found] == ["Low Tide"]
