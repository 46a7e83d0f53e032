"""Accounts, tokens, roles, the audit log and GDPR, over the API against a real SQLite file."""

from __future__ import annotations

import json
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


# -- a guest signs in to an existing account (issue 5: the guest's work is kept) ---------------


def names(client: TestClient[Any], headers: dict[str, str], **params: str) -> list[str]:
    items = client.get("/api/projects", headers=headers, params={"sort": "name", **params}).json()["items"]
    return [p["name"] for p in items]


def test_a_guest_signing_in_to_an_account_hands_its_projects_over(
    client: TestClient[Any], guest: Person, user_factory: Callable[..., Person], settings: Settings
) -> None:
    # Given Inès, with a project of her own, and a guest session (on another device) with three:
    # one shared with Inès as an editor, one in the guest's trash
    ines = user_factory("Inès")
    client.post("/api/projects", headers=ines.headers, json={"name": "Inès Film"})
    made = {
        name: client.post("/api/projects", headers=guest.headers, json={"name": name}).json()["id"]
        for name in ("Harbour Lights", "Night Ferry", "Old Cut")
    }
    r = client.post(f"/api/projects/{made['Night Ferry']}/members", headers=guest.headers,
                    json={"email": ines.user["email"], "role": "editor"})  # fmt: skip
    assert r.status_code == 200, r.text
    assert client.delete(f"/api/projects/{made['Old Cut']}", headers=guest.headers).status_code == 204

    # When the guest signs in as Inès (the guest's token goes with the request, as the PWA sends it)
    r = client.post("/api/auth/login", headers=guest.headers,
                    json={"email": ines.user["email"], "password": "correct horse battery"})  # fmt: skip

    # Then the answer says what came over, and Inès has every project, as owner
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["user"]["id"] == ines.user["id"]
    assert body["from_guest"] == {
        "id": guest.user["id"],
        "name": guest.user["name"],
        "projects": [{"id": made["Harbour Lights"], "name": "Harbour Lights"},
                     {"id": made["Night Ferry"], "name": "Night Ferry"}],
        "tasks": 0,
        "samples_left": 0,
    }  # fmt: skip
    now = {"Authorization": f"Bearer {body['token']}"}
    assert names(client, now) == ["Harbour Lights", "Inès Film", "Night Ferry"]
    ferry = client.get(f"/api/projects/{made['Night Ferry']}", headers=now).json()
    assert ferry["role"] == "owner"  # the higher of the two roles, held once
    members = client.get(f"/api/projects/{made['Night Ferry']}/members", headers=now).json()
    assert [(m["user"]["name"], m["role"]) for m in members] == [("Inès", "owner")]
    # ... the trashed one is in her trash, restorable
    assert [p["name"] for p in client.get("/api/projects/trash", headers=now).json()] == ["Old Cut"]
    assert client.post(f"/api/projects/{made['Old Cut']}/restore", headers=now).status_code == 200
    # ... the guest is retired: its token no longer works, and signing in with it moves nothing
    assert client.get("/api/me", headers=guest.headers).status_code == 401
    again = client.post("/api/auth/login", headers=guest.headers,
                        json={"email": ines.user["email"], "password": "correct horse battery"})  # fmt: skip
    assert again.status_code == 200
    assert again.json()["from_guest"] is None
    # ... and the audit log says who took what from whom
    with sqlite3.connect(settings.db_path) as db:
        actor, target, detail = db.execute(
            "SELECT actor_id, target, detail FROM audit WHERE action = 'account.guest_handed_over'"
        ).fetchone()
        (merged_into,) = db.execute(
            "SELECT merged_into FROM users WHERE id = ?", [guest.user["id"]]
        ).fetchone()
        tokens = db.execute("SELECT COUNT(*) FROM tokens WHERE user_id = ?", [guest.user["id"]]).fetchone()[0]
    assert (actor, target) == (ines.user["id"], guest.user["id"])
    assert json.loads(detail)["projects"] == [made["Harbour Lights"], made["Night Ferry"]]
    assert merged_into == ines.user["id"]
    assert tokens == 0
    # Her data export names the guest session; erasing her account erases it too
    assert [g["id"] for g in client.get("/api/me/export", headers=now).json()["guest_sessions"]] == [
        guest.user["id"]
    ]
    assert client.delete("/api/me", headers=now).status_code == 204
    with sqlite3.connect(settings.db_path) as db:
        assert db.execute("SELECT COUNT(*) FROM users WHERE id = ?", [guest.user["id"]]).fetchone()[0] == 0


def test_signing_in_from_an_account_or_from_nowhere_moves_nothing(
    client: TestClient[Any], user_factory: Callable[..., Person]
) -> None:
    ana, bo = user_factory("Ana"), user_factory("Bo")
    client.post("/api/projects", headers=ana.headers, json={"name": "Ana's"})
    r = client.post("/api/auth/login", headers=ana.headers,
                    json={"email": bo.user["email"], "password": "correct horse battery"})  # fmt: skip
    assert r.status_code == 200
    assert r.json()["from_guest"] is None
    assert names(client, ana.headers) == ["Ana's"]  # Ana's session and projects are untouched
    assert names(client, {"Authorization": f"Bearer {r.json()['token']}"}) == []
    r = client.post("/api/auth/login", json={"email": bo.user["email"], "password": "correct horse battery"})
    assert r.json()["from_guest"] is None


def test_a_wrong_password_from_a_guest_moves_nothing(
    client: TestClient[Any], guest: Person, user_factory: Callable[..., Person]
) -> None:
    ines = user_factory("Inès")
    client.post("/api/projects", headers=guest.headers, json={"name": "Mine"})
    r = client.post("/api/auth/login", headers=guest.headers,
                    json={"email": ines.user["email"], "password": "not the password"})  # fmt: skip
    assert r.status_code == 401
    assert names(client, guest.headers) == ["Mine"]
    assert names(client, ines.headers) == []


def test_a_hand_over_that_fails_half_way_leaves_everything_as_it_was(
    client: TestClient[Any], guest: Person, user_factory: Callable[..., Person], settings: Settings
) -> None:
    ines = user_factory("Inès")
    pid = client.post("/api/projects", headers=guest.headers, json={"name": "Kept"}).json()["id"]
    with sqlite3.connect(settings.db_path) as db:
        tokens_before = db.execute("SELECT COUNT(*) FROM tokens").fetchone()[0]
        # The last write of the hand-over fails (as a full disk would), after the others were made.
        db.execute(
            "CREATE TRIGGER fail_retire BEFORE UPDATE OF merged_into ON users "
            "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
    r = client.post("/api/auth/login", headers=guest.headers,
                    json={"email": ines.user["email"], "password": "correct horse battery"})  # fmt: skip
    assert r.status_code == 500
    assert r.headers["content-type"].startswith("application/problem+json")
    # Nothing moved: the guest still works and owns its project; Inès got no token and no project
    assert client.get(f"/api/projects/{pid}", headers=guest.headers).json()["role"] == "owner"
    assert names(client, ines.headers) == []
    with sqlite3.connect(settings.db_path) as db:
        assert db.execute("SELECT COUNT(*) FROM tokens").fetchone()[0] == tokens_before
        assert "account.guest_handed_over" not in [r[0] for r in db.execute("SELECT action FROM audit")]
        db.execute("DROP TRIGGER fail_retire")
    # Once the fault is gone, the same sign-in hands the project over
    r = client.post("/api/auth/login", headers=guest.headers,
                    json={"email": ines.user["email"], "password": "correct horse battery"})  # fmt: skip
    assert [p["name"] for p in r.json()["from_guest"]["projects"]] == ["Kept"]


def test_unopened_sample_copies_of_a_guest_are_not_handed_over_twice(tmp_path: Any) -> None:
    from app.main import create_app
    from tests.conftest import BASE, make_settings

    settings = make_settings(tmp_path, STUDIO_SEED_SAMPLES=True)
    with TestClient(create_app(settings), base_url=BASE) as c:
        r = c.post(
            "/api/auth/register",
            json={"email": "ines@example.org", "password": "a long secret", "name": "Inès"},
        )
        assert r.status_code == 201
        guest = c.post("/api/auth/guest").json()
        gh = {"Authorization": f"Bearer {guest['token']}"}
        samples = {p["name"]: p["id"] for p in c.get("/api/projects", headers=gh).json()["items"]}
        assert set(samples) == {"Lost Property", "Low Tide"}
        # The guest worked on one sample (renamed it); the other it never touched
        r = c.patch(f"/api/projects/{samples['Low Tide']}", headers=gh, json={"name": "Low Tide, my cut"})
        assert r.status_code == 200, r.text
        r = c.post(
            "/api/auth/login", headers=gh, json={"email": "ines@example.org", "password": "a long secret"}
        )
        handed = r.json()["from_guest"]
        assert [p["name"] for p in handed["projects"]] == ["Low Tide, my cut"]
        assert handed["samples_left"] == 1
        now = {"Authorization": f"Bearer {r.json()['token']}"}
        # Inès has her own samples once, and the guest's work
        assert names(c, now) == ["Lost Property", "Low Tide", "Low Tide, my cut"]
        assert c.get("/api/projects/trash", headers=now).json() == []
        with sqlite3.connect(settings.db_path) as db:
            (deleted,) = db.execute(
                "SELECT deleted_at FROM projects WHERE id = ?", [samples["Lost Property"]]
            ).fetchone()
        assert deleted is not None  # the untouched copy went to the trash, purged in time


def test_a_guest_s_queued_task_becomes_the_account_s(tmp_path: Any, redis_url: str) -> None:
    import httpx

    from tests.conftest import start_server, stop_server

    # A broker and no worker: the task waits in the queue.
    server = start_server(tmp_path, STUDIO_BROKER_URL=redis_url, STUDIO_SEED_SAMPLES="false")
    try:
        guest = httpx.post(f"{server.url}/api/auth/guest").json()
        gh = {"Authorization": f"Bearer {guest['token']}"}
        pid = httpx.post(f"{server.url}/api/projects", headers=gh, json={"name": "Queued"}).json()["id"]
        task = httpx.post(f"{server.url}/api/projects/{pid}/tasks", headers=gh,
                          json={"kind": "project.export", "params": {"format": "bundle"}}).json()  # fmt: skip
        assert task["state"] == "queued"
        httpx.post(f"{server.url}/api/auth/register",
                   json={"email": "ines@example.org", "password": "a long secret", "name": "Inès"})  # fmt: skip
        r = httpx.post(f"{server.url}/api/auth/login", headers=gh,
                       json={"email": "ines@example.org", "password": "a long secret"})  # fmt: skip
        assert r.json()["from_guest"]["tasks"] == 1
        ih = {"Authorization": f"Bearer {r.json()['token']}"}
        assert httpx.get(f"{server.url}/api/tasks/{task['id']}", headers=ih).json()["state"] == "queued"
        with sqlite3.connect(server.data_dir / "studio.db") as db:
            (requester,) = db.execute("SELECT requester_id FROM tasks WHERE id = ?", [task["id"]]).fetchone()
        assert requester == r.json()["user"]["id"]
        cancelled = httpx.post(f"{server.url}/api/tasks/{task['id']}/cancel", headers=ih)
        assert cancelled.status_code == 200
        assert cancelled.json()["state"] == "cancelled"
    finally:
        stop_server(server)
