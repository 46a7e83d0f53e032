"""What every response carries and how every error looks: problem details, request ids,
security headers, compression, limits, and the allowed-hosts check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from app.main import create_app
from tasks.remote import WORKER_HEADER, worker_token
from tests.conftest import BASE, Person, make_settings

PROBLEM_KEYS = {"type", "title", "status", "detail", "instance"}


def assert_problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = dict(r.json())
    assert set(body) >= PROBLEM_KEYS
    assert body["status"] == status
    assert body["detail"]
    assert "Traceback" not in r.text
    return body


def test_unknown_api_address_is_a_404_problem(client: TestClient[Any]) -> None:
    assert_problem(client.get("/api/no-such-thing"), 404)


def test_wrong_method_is_a_405_problem(client: TestClient[Any]) -> None:
    assert_problem(client.delete("/api/health"), 405)


def test_malformed_json_is_a_400_problem(client: TestClient[Any], guest: Person, settings: Any) -> None:
    r = client.post(
        "/api/projects", headers={**guest.headers, "content-type": "application/json"}, content=b'{"name": '
    )
    assert "not valid JSON" in assert_problem(r, 400)["detail"]
    assert list((settings.workspace_root / "Projects").iterdir()) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": 7}, "name"),
        ({"name": "x", "template": "four-act"}, "template"),
        ({"name": "", "template": "blank"}, "name"),
        ({"name": "...", "template": "blank"}, "name"),
        ({"name": "a/b"}, "name"),
        ({"name": "x" * 500}, "name"),
        ({"name": "x", "id": "not-a-uuid"}, "id"),
        ({}, "name"),
    ],
)
def test_invalid_project_requests_are_422_problems_that_change_nothing(
    client: TestClient[Any], guest: Person, settings: Any, body: dict[str, Any], field: str
) -> None:
    problem = assert_problem(client.post("/api/projects", headers=guest.headers, json=body), 422)
    assert field in problem["detail"]
    assert list((settings.workspace_root / "Projects").iterdir()) == []
    assert client.get("/api/projects", headers=guest.headers).json()["total"] == 0


def test_an_oversized_body_is_a_413_problem(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, STUDIO_MAX_BODY_BYTES=4096)
    with TestClient(create_app(settings), base_url=BASE) as c:
        token = c.post("/api/auth/guest").json()["token"]
        r = c.post("/api/projects", headers={"Authorization": f"Bearer {token}"}, json={"name": "x" * 10_000})
        assert_problem(r, 413)
        assert list((settings.workspace_root / "Projects").iterdir()) == []


def test_rate_limits_answer_429_with_retry_after(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, STUDIO_RATE_LIMIT_USER=5, STUDIO_RATE_LIMIT_IP=1000, STUDIO_RATE_LIMIT_AUTH=1000
    )
    with TestClient(create_app(settings), base_url=BASE) as c:
        headers = {"Authorization": f"Bearer {c.post('/api/auth/guest').json()['token']}"}
        codes = [c.get("/api/projects", headers=headers).status_code for _ in range(30)]
        assert codes[:10] == [200] * 10  # a burst of twice the rate passes
        assert 429 in codes
        r = c.get("/api/projects", headers=headers)
        assert_problem(r, 429)
        assert int(r.headers["retry-after"]) >= 1
        # Another person is not slowed down by the first one's burst.
        other = {"Authorization": f"Bearer {c.post('/api/auth/guest').json()['token']}"}
        assert c.get("/api/projects", headers=other).status_code == 200


def test_the_studios_own_workers_are_never_rate_limited_and_impostors_are(tmp_path: Path) -> None:
    secret = "a-worker-secret-of-this-studio"
    settings = make_settings(tmp_path, STUDIO_RATE_LIMIT_IP=5, STUDIO_WORKER_SECRET=secret)
    with TestClient(create_app(settings), base_url=BASE) as c:
        # Many GPU workers behind one address report progress many times a second.
        worker = {WORKER_HEADER: worker_token(secret)}
        assert {c.get("/api/worker/hello", headers=worker).status_code for _ in range(40)} == {200}
        impostor = {WORKER_HEADER: worker_token("a-guess-at-the-secret-of-it")}
        codes = [c.get("/api/worker/hello", headers=impostor).status_code for _ in range(40)]
        assert set(codes[:10]) == {401}
        assert 429 in codes


def test_sign_in_attempts_are_limited_per_ip(tmp_path: Path) -> None:
    # A token every 100 s: however slow each password check is on a busy machine, none comes back
    # during the test, so the sixth attempt on is refused, every time.
    settings = make_settings(tmp_path, STUDIO_RATE_LIMIT_AUTH=0.01)
    with TestClient(create_app(settings), base_url=BASE) as c:
        codes = [
            c.post(
                "/api/auth/login", json={"email": "a@example.org", "password": "guess number x"}
            ).status_code
            for _ in range(8)
        ]
        assert codes == [401] * 5 + [429] * 3


def test_an_unexpected_failure_is_a_500_problem_without_internals(
    client: TestClient[Any], guest: Person, settings: Any
) -> None:
    project = client.post("/api/projects", headers=guest.headers, json={"name": "Fragile"}).json()
    (settings.workspace_root / project["path"] / "project.json").write_text("{ broken")
    body = assert_problem(client.get(f"/api/projects/{project['id']}/state", headers=guest.headers), 500)
    assert "request id" in body["detail"]
    assert body["request_id"]
    assert "JSONDecodeError" not in str(body)
    assert "/workspace/" not in str(body)


def test_every_response_has_a_request_id_and_security_headers(client: TestClient[Any]) -> None:
    for path in ("/api/health", "/", "/api/nope"):
        r = client.get(path)
        assert len(r.headers["x-request-id"]) >= 8
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        # API answers (a person's data) are never stored by the browser; the app shell may be
        assert (r.headers.get("cache-control") == "no-store") == path.startswith("/api"), path
    r = client.get("/api/health", headers={"X-Request-ID": "trace-abc-12345"})
    assert r.headers["x-request-id"] == "trace-abc-12345"
    r = client.get("/api/health", headers={"X-Request-ID": "bad id\nwith newline"})
    assert r.headers["x-request-id"] != "bad id\nwith newline"
    assert (
        r.headers["x-request-id"]
        in client.get("/api/nope", headers={"X-Request-ID": r.headers["x-request-id"]}).text
    )


def test_dns_rebinding_hosts_are_refused(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, STUDIO_ALLOWED_HOSTS="studio.example.org")
    app = create_app(settings)
    with TestClient(app, base_url="http://attacker.example:8000") as c:
        body = assert_problem(c.get("/api/health"), 400)
        assert "attacker.example" in body["detail"]
        assert "STUDIO_ALLOWED_HOSTS" in body["detail"]
    for host in ("http://localhost:8000", "http://127.0.0.1", "http://studio.example.org"):
        with TestClient(app, base_url=host) as c:
            assert c.get("/api/health").status_code == 200, host


def test_json_and_static_files_are_compressed(client: TestClient[Any], guest: Person) -> None:
    for i in range(30):
        client.post(
            "/api/projects", headers=guest.headers, json={"name": f"Film {i}", "description": "d" * 40}
        )
    for encoding in ("br", "gzip"):
        r = client.get("/api/projects", headers={**guest.headers, "Accept-Encoding": encoding})
        assert r.headers["content-encoding"] == encoding
        assert r.json()["total"] == 30
    r = client.get("/", headers={"Accept-Encoding": "br"})
    assert r.status_code == 200
    if len(r.content) > 512:
        assert r.headers["content-encoding"] == "br"


def test_health_reports_each_component(client: TestClient[Any]) -> None:
    body = client.get("/api/health").json()
    assert body["status"] == "ok"
    assert {"index", "workspace", "git", "broker"} <= set(body["components"])
    assert body["components"]["broker"]["kind"] == "embedded"


def test_openapi_document_lists_the_contract_routes(client: TestClient[Any]) -> None:
    doc = client.get("/schema/openapi.json").json()
    paths = set(doc["paths"])
    for route in ("/api/health", "/api/auth/guest", "/api/auth/register", "/api/auth/login", "/api/auth/logout",
                  "/api/templates", "/api/projects", "/api/projects/bulk", "/api/projects/{project_id}",
                  "/api/projects/{project_id}/export", "/api/projects/{project_id}/history",
                  "/api/projects/{project_id}/activity", "/api/projects/{project_id}/members"):  # fmt: skip
        assert route in paths, route
