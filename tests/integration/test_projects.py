"""Projects over the API, checked on disk with the real git CLI."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from app.accounts.service import Accounts
from app.problems import Problem
from app.projects.service import Projects
from app.settings import Settings
from app.studio import Studio
from sync.builders import Builders
from sync.indexwriter import IndexWriter
from sync.workspace import ProjectLocks
from tests.conftest import Person, git

TREE = [
    ".gitattributes",
    ".gitignore",
    "01_Assets/Generative_Assets/Characters/.gitkeep",
    "01_Assets/Generative_Assets/Locations/.gitkeep",
    "01_Assets/Generative_Assets/Styles/.gitkeep",
    "02_Source_Creative/Canvases/main.json",
    "02_Source_Creative/chat.json",
    "02_Source_Creative/story.json",
    "03_Renders/.gitkeep",
    "04_Project_Files/assets.json",
    "04_Project_Files/takes.json",
    "project.json",
]


def create(client: TestClient[Any], who: Person, **body: Any) -> dict[str, Any]:
    r = client.post("/api/projects", headers=who.headers, json={"name": "My Film", **body})
    assert r.status_code == 201, r.text
    return dict(r.json())


def folder(settings: Settings, project: dict[str, Any]) -> Path:
    return settings.workspace_root / project["path"]


def test_a_new_project_is_the_spec_tree_in_a_clean_git_repository(
    client: TestClient[Any], guest: Person, settings: Settings
) -> None:
    project = create(client, guest, template="three-act")
    assert project["path"] == "Projects/My_Film"
    assert uuid.UUID(project["id"])
    assert project["role"] == "owner"
    root = folder(settings, project)
    assert sorted(git(root, "ls-files").split()) == TREE
    for ignored in ("05_Cache", "06_Exports"):
        assert (root / ignored).is_dir()
    assert git(root, "status", "--porcelain") == ""
    git(root, "fsck", "--strict")
    author = git(root, "log", "--format=%an|%ae|%s").strip().splitlines()
    assert author == [f"{guest.user['name']}|{guest.user['id']}@guest.studio.invalid|"
                      "Create project My Film from the Classic Three-Act template"]  # fmt: skip
    assert git(root, "branch", "--show-current").strip() == "main"
    manifest = json.loads((root / "project.json").read_text())
    assert manifest["uuid"] == project["id"]
    assert manifest["name"] == "My Film"
    assert manifest["template"] == "three-act"
    assert manifest["open_canvas"] == "main"
    assert manifest["canvases"] == {
        "main": {"file": "02_Source_Creative/Canvases/main.json", "name": "Main", "order": 0}
    }
    assert datetime.fromisoformat(manifest["created"])
    gitattributes = (root / ".gitattributes").read_text()
    for pattern in ("*.mp4", "*.png", "*.jpg", "*.wav", "*.safetensors"):
        assert f"{pattern} filter=lfs diff=lfs merge=lfs -text" in gitattributes
    assert (root / ".gitignore").read_text().split() == ["05_Cache/", "06_Exports/"]


def test_every_file_is_deterministic_json(client: TestClient[Any], guest: Person, settings: Settings) -> None:
    root = folder(settings, create(client, guest, template="save-the-cat"))
    for path in root.rglob("*.json"):
        if ".git" in path.parts:
            continue
        text = path.read_text()
        assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n", path


@pytest.mark.parametrize(
    ("template", "acts", "shares"),
    [
        ("blank", 0, []),
        ("three-act", 3, [25, 50, 25]),
        ("five-act", 5, None),
        ("heros-journey", 3, None),
        ("save-the-cat", 3, None),
    ],
)
def test_a_project_starts_with_its_templates_structure_and_one_canvas(
    client: TestClient[Any],
    guest: Person,
    settings: Settings,
    template: str,
    acts: int,
    shares: list[int] | None,
) -> None:
    root = folder(settings, create(client, guest, name=f"Film {template}", template=template))
    story = json.loads((root / "02_Source_Creative/story.json").read_text())
    assert story["template"] == template
    assert len(story["acts"]) == acts
    ordered = sorted(story["acts"].values(), key=lambda a: a["order"])
    if shares is not None:
        assert [a["share"] for a in ordered] == shares
    if acts:
        assert round(sum(a["share"] for a in ordered), 1) == 100
        assert {a["phase"] for a in ordered} <= {"setup", "confrontation", "resolution"}
    assert list(json.loads((root / "project.json").read_text())["canvases"]) == ["main"]
    if template == "save-the-cat":
        assert len(story["beats"]) == 15
    if template == "three-act":
        names = [p["name"] for p in sorted(story["plot_points"].values(), key=lambda p: p["order"])]
        assert names == ["Hook", "Plot Turn 1", "Pinch 1", "Midpoint", "Pinch 2", "Plot Turn 2", "Resolution"]


def test_templates_are_listed_with_the_contract_ids(client: TestClient[Any], guest: Person) -> None:
    r = client.get("/api/templates", headers=guest.headers)
    assert r.status_code == 200
    assert [t["id"] for t in r.json()] == ["blank", "three-act", "five-act", "heros-journey", "save-the-cat"]
    assert all(t["name"] for t in r.json())


def test_same_names_get_suffixed_folders(client: TestClient[Any], guest: Person, settings: Settings) -> None:
    paths = [create(client, guest)["path"] for _ in range(3)]
    assert paths == ["Projects/My_Film", "Projects/My_Film_2", "Projects/My_Film_3"]
    assert create(client, guest, name="my film")["path"] == "Projects/my_film_4"
    assert create(client, guest, name="Ciné-club «Lumière»")["path"] == "Projects/Ciné-club_«Lumière»"


def test_folders_made_outside_the_studio_are_never_taken_over(
    client: TestClient[Any], guest: Person, settings: Settings
) -> None:
    """A folder someone made in Projects/ by hand (a file manager, another process) keeps its name:
    a new project whose folder would differ from it only by case gets a suffix, however soon
    after the studio's last look at the folder it appeared."""
    projects = settings.workspace_root / "Projects"
    assert create(client, guest, name="Night Shift")["path"] == "Projects/Night_Shift"
    for n in range(5):
        (projects / f"HAND_MADE_{n}").mkdir()
        assert create(client, guest, name=f"hand made {n}")["path"] == f"Projects/hand_made_{n}_2"
        assert not any((projects / f"HAND_MADE_{n}").iterdir())  # untouched
    (projects / "Night_Shift_2").mkdir()
    assert create(client, guest, name="night shift")["path"] == "Projects/night_shift_3"


def test_create_with_a_client_id_is_idempotent(
    client: TestClient[Any], guest: Person, settings: Settings
) -> None:
    pid = str(uuid.uuid4())
    first = create(client, guest, id=pid)
    again = create(client, guest, id=pid)
    assert first["id"] == again["id"] == pid
    assert len(list(settings.workspace_root.joinpath("Projects").iterdir())) == 1
    r = client.post("/api/projects", headers=guest.headers, json={"name": "Other", "id": pid})
    assert r.status_code == 409


def test_two_creations_with_one_id_at_once_make_one_project(settings: Settings) -> None:
    """An offline client sends its retry while the first try is still being built: the person gets
    the same project twice. A different project under that id gets a 409. Either way one folder
    and one row stay. (Both creations pass the checks before either is registered: the second
    finds the id taken only when its rows go in.)"""
    studio = Studio.open(settings)
    user, _ = Accounts(studio).create_guest(None)
    projects = Projects(studio, ProjectLocks())
    builders, writer = Builders(studio.workspace, processes=0), IndexWriter(studio.index)

    async def race(*names: str) -> list[Any]:
        pid = str(uuid.uuid4())
        return await asyncio.gather(
            *(projects.create_async(builders, writer, user, name, "blank", pid, "") for name in names),
            return_exceptions=True,
        )

    (first, made), (again, made_again) = asyncio.run(race("Twice", "Twice"))
    assert (made, made_again) == (True, False)
    assert first == again
    assert first["path"] == "Projects/Twice"
    one, other = asyncio.run(race("First", "Second"))
    assert isinstance(other, Problem), other
    assert other.status_code == 409
    assert one[0]["path"] == "Projects/First"
    assert sorted(p.name for p in studio.workspace.projects.iterdir()) == ["First", "Twice"]
    assert list(studio.workspace.staging.iterdir()) == []
    with sqlite3.connect(settings.db_path) as db:
        assert db.execute("SELECT COUNT(*) FROM projects").fetchone()[0] == 2
        assert db.execute("SELECT COUNT(*) FROM members").fetchone()[0] == 2


def test_list_searches_filters_and_sorts(client: TestClient[Any], guest: Person) -> None:
    a = create(client, guest, name="Lighthouse Keeper", template="three-act", description="storm at sea")
    b = create(client, guest, name="Night Shift", template="save-the-cat")
    c = create(client, guest, name="Ocean Diaries", template="blank", description="a lighthouse documentary")

    def names(**params: Any) -> list[str]:
        r = client.get("/api/projects", headers=guest.headers, params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["total"] == len(body["items"])
        return [p["name"] for p in body["items"]]

    assert names() == ["Ocean Diaries", "Night Shift", "Lighthouse Keeper"]
    assert sorted(names(q="lighthouse")) == ["Lighthouse Keeper", "Ocean Diaries"]
    assert names(q="ligh") == names(q="lighthouse")
    assert names(q="storm sea") == ["Lighthouse Keeper"]
    assert names(q='"; DROP TABLE projects; --') == []
    assert names(template="save-the-cat") == ["Night Shift"]
    assert names(sort="name") == ["Lighthouse Keeper", "Night Shift", "Ocean Diaries"]
    assert names(sort="-name") == ["Ocean Diaries", "Night Shift", "Lighthouse Keeper"]
    assert names(sort="created") == ["Lighthouse Keeper", "Night Shift", "Ocean Diaries"]
    client.patch(f"/api/projects/{b['id']}", headers=guest.headers, json={"archived": True})
    assert "Night Shift" not in names()
    assert names(archived="true") == ["Night Shift"]
    assert len(names(archived="all")) == 3
    since = client.get(f"/api/projects/{c['id']}", headers=guest.headers).json()["updated_at"]
    assert names(updated_since=since, archived="all") == ["Night Shift", "Ocean Diaries"]
    assert a["id"]
    r = client.get("/api/projects", headers=guest.headers, params={"sort": "colour"})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")


def test_list_and_get_show_every_change_at_once_whoever_makes_it(
    client: TestClient[Any], guest: Person, settings: Settings
) -> None:
    # Lists and projects are answered from memory while the index is unchanged (sync/readcache.py).
    project = create(client, guest, name="Harbour Lights")
    pid = project["id"]

    def listed() -> list[tuple[str, str]]:
        items = client.get("/api/projects", headers=guest.headers).json()["items"]
        return [(p["name"], p["description"]) for p in items]

    def got() -> dict[str, Any]:
        r = client.get(f"/api/projects/{pid}", headers=guest.headers)
        return {"status": r.status_code, **r.json()}

    for _ in range(3):  # asked again and again: the same answer
        assert listed() == [("Harbour Lights", "")]
        assert got()["name"] == "Harbour Lights"
    renamed = client.patch(f"/api/projects/{pid}", headers=guest.headers, json={"name": "Harbour Dark"})
    assert renamed.status_code == 200
    assert listed() == [("Harbour Dark", "")]
    assert got()["name"] == "Harbour Dark"
    # Another program (a second server process, a hand edit) commits to the index file.
    with sqlite3.connect(settings.data_dir / "studio.db") as other:
        other.execute("UPDATE projects SET description = 'edited elsewhere' WHERE id = ?", [pid])
    assert listed() == [("Harbour Dark", "edited elsewhere")]
    assert got()["description"] == "edited elsewhere"
    assert client.delete(f"/api/projects/{pid}", headers=guest.headers).status_code == 204
    assert listed() == []
    assert got()["status"] == 404


def test_rename_and_describe_are_committed_and_searchable(
    client: TestClient[Any], guest: Person, settings: Settings
) -> None:
    project = create(client, guest)
    r = client.patch(f"/api/projects/{project['id']}", headers=guest.headers,
                     json={"name": "The Last Tide", "description": "A ferryman's final crossing"})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "The Last Tide"
    root = folder(settings, project)
    assert json.loads((root / "project.json").read_text())["name"] == "The Last Tide"
    assert git(root, "status", "--porcelain") == ""
    history = client.get(f"/api/projects/{project['id']}/history", headers=guest.headers).json()
    assert history[0]["message"] == 'Rename project to "The Last Tide"; edit project description'
    assert history[0]["author"]["name"] == guest.user["name"]
    assert len(history) == 2
    found = client.get("/api/projects", headers=guest.headers, params={"q": "ferryman"}).json()
    assert [p["id"] for p in found["items"]] == [project["id"]]
    activity = client.get(f"/api/projects/{project['id']}/activity", headers=guest.headers).json()
    assert activity[0]["summary"] == history[0]["message"]
    assert activity[0]["detail"]["authors"] == [guest.user["name"]]


def test_delete_goes_to_the_trash_and_can_be_restored(
    client: TestClient[Any], guest: Person, settings: Settings
) -> None:
    project = create(client, guest)
    root = folder(settings, project)
    assert client.delete(f"/api/projects/{project['id']}", headers=guest.headers).status_code == 204
    assert not root.exists()
    assert client.get(f"/api/projects/{project['id']}", headers=guest.headers).status_code == 404
    trash = client.get("/api/projects/trash", headers=guest.headers).json()
    assert [t["id"] for t in trash] == [project["id"]]
    purge_at = datetime.fromisoformat(trash[0]["purge_at"]) - datetime.fromisoformat(trash[0]["deleted_at"])
    assert purge_at == timedelta(days=30)
    r = client.post(f"/api/projects/{project['id']}/restore", headers=guest.headers)
    assert r.status_code == 200, r.text
    assert r.json()["path"] == "Projects/My_Film"
    assert git(root, "status", "--porcelain") == ""
    assert client.get("/api/projects/trash", headers=guest.headers).json() == []


def test_trash_is_purged_after_thirty_days(
    client: TestClient[Any], guest: Person, settings: Settings
) -> None:
    project = create(client, guest)
    client.delete(f"/api/projects/{project['id']}", headers=guest.headers)
    projects = client.app.state.services.projects
    assert projects.purge_expired(datetime.now(UTC) + timedelta(days=29)) == 0
    assert list((settings.workspace_root / ".trash").iterdir())
    assert projects.purge_expired(datetime.now(UTC) + timedelta(days=31)) == 1
    assert list((settings.workspace_root / ".trash").iterdir()) == []
    assert client.post(f"/api/projects/{project['id']}/restore", headers=guest.headers).status_code == 404


def test_export_bundle_and_zip_then_import_each_as_a_new_project(
    client: TestClient[Any], guest: Person, settings: Settings, tmp_path: Path
) -> None:
    project = create(client, guest, template="three-act")
    client.patch(f"/api/projects/{project['id']}", headers=guest.headers, json={"description": "two commits"})
    for fmt in ("bundle", "zip"):
        r = client.get(f"/api/projects/{project['id']}/export", headers=guest.headers, params={"format": fmt})
        assert r.status_code == 200, r.text
        assert f"My_Film.{fmt}" in r.headers["content-disposition"]
        exported = tmp_path / f"export.{fmt}"
        exported.write_bytes(r.content)
        if fmt == "bundle":
            assert "refs/heads/main" in git(tmp_path, "bundle", "list-heads", str(exported))
        r = client.post(
            "/api/projects/import", headers=guest.headers, files={"file": (exported.name, r.content)}
        )
        assert r.status_code == 201, r.text
        imported = r.json()
        assert imported["id"] != project["id"]
        assert imported["name"] == "My Film"
        root = folder(settings, imported)
        assert json.loads((root / "project.json").read_text())["uuid"] == imported["id"]
        assert git(root, "status", "--porcelain") == ""
        log = git(root, "log", "--format=%s").splitlines()
        # A bundle keeps the history; a zip starts a new one.
        assert len(log) == (3 if fmt == "bundle" else 1)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"hello, not a project", "neither a git bundle nor a zip"),
        (b"PK\x03\x04 broken zip", "not a zip"),
        (b"# v2 git bundle\ngarbage", "not a valid git bundle"),
    ],
)
def test_a_bad_import_is_refused_and_leaves_nothing(
    client: TestClient[Any], guest: Person, settings: Settings, content: bytes, words: str
) -> None:
    r = client.post("/api/projects/import", headers=guest.headers, files={"file": ("x.bin", content)})
    assert r.status_code == 422
    assert words in r.json()["detail"]
    assert list((settings.workspace_root / "Projects").iterdir()) == []
    assert list((settings.workspace_root / ".staging").iterdir()) == []


def test_a_zip_with_a_path_escape_is_refused(
    client: TestClient[Any], guest: Person, settings: Settings, tmp_path: Path
) -> None:
    import zipfile

    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("P/project.json", json.dumps({"uuid": str(uuid.uuid4()), "name": "x", "canvases": {}}))
        zf.writestr("P/../../../../escaped.txt", "gotcha")
    r = client.post(
        "/api/projects/import", headers=guest.headers, files={"file": ("evil.zip", evil.read_bytes())}
    )
    assert r.status_code == 422
    assert "unsafe path" in r.json()["detail"]
    assert not list(tmp_path.rglob("escaped.txt"))
    assert list((settings.workspace_root / "Projects").iterdir()) == []


def test_bulk_archive_delete_and_export(client: TestClient[Any], guest: Person, tmp_path: Path) -> None:
    ids = [create(client, guest, name=f"Film {i}")["id"] for i in range(3)]
    stranger = str(uuid.uuid4())
    r = client.post(
        "/api/projects/bulk", headers=guest.headers, json={"action": "archive", "ids": [*ids[:2], stranger]}
    )
    assert r.status_code == 200
    assert [x["ok"] for x in r.json()["results"]] == [True, True, False]
    assert r.json()["results"][2]["status"] == 404
    listed = client.get("/api/projects", headers=guest.headers, params={"archived": "true"}).json()
    assert sorted(p["id"] for p in listed["items"]) == sorted(ids[:2])
    r = client.post("/api/projects/bulk", headers=guest.headers, json={"action": "unarchive", "ids": ids[:1]})
    assert r.json()["results"][0]["ok"]
    r = client.post("/api/projects/bulk", headers=guest.headers, json={"action": "export", "ids": ids})
    assert r.status_code == 200
    import zipfile

    (tmp_path / "all.zip").write_bytes(r.content)
    with zipfile.ZipFile(tmp_path / "all.zip") as zf:
        assert sorted(zf.namelist()) == ["Film_0.bundle", "Film_1.bundle", "Film_2.bundle"]
    r = client.post("/api/projects/bulk", headers=guest.headers, json={"action": "delete", "ids": ids})
    assert all(x["ok"] for x in r.json()["results"])
    assert client.get("/api/projects", headers=guest.headers, params={"archived": "all"}).json()["total"] == 0
    r = client.post("/api/projects/bulk", headers=guest.headers, json={"action": "explode", "ids": ids})
    assert r.status_code == 422


def test_every_project_has_a_preview_image(
    client: TestClient[Any], guest: Person, settings: Settings
) -> None:
    from io import BytesIO

    from PIL import Image

    project = create(client, guest)
    r = client.get(f"/api/projects/{project['id']}/preview", headers=guest.headers)
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/png"
    placeholder = Image.open(BytesIO(r.content))
    assert placeholder.size == (640, 360)
    # A render replaces the placeholder; the cache is ignored by git.
    renders = folder(settings, project) / "03_Renders" / "main" / "n1"
    renders.mkdir(parents=True)
    Image.new("RGB", (320, 200), (200, 30, 30)).save(renders / "take_0001.png")
    r = client.get(f"/api/projects/{project['id']}/preview", headers=guest.headers)
    shown = Image.open(BytesIO(r.content)).convert("RGB")
    assert shown.size == (320, 200)
    assert shown.getpixel((10, 10)) == (200, 30, 30)


def test_list_pages_report_the_full_total(client: TestClient[Any], guest: Person) -> None:
    for i in range(5):
        create(client, guest, name=f"Reel {i}")
    pages = [
        client.get(
            "/api/projects", headers=guest.headers, params={"limit": 2, "offset": o, "sort": "name"}
        ).json()
        for o in (0, 2, 4, 6)
    ]
    assert [p["total"] for p in pages] == [5, 5, 5, 5]
    assert [[x["name"] for x in p["items"]] for p in pages] == [
        ["Reel 0", "Reel 1"],
        ["Reel 2", "Reel 3"],
        ["Reel 4"],
        [],
    ]


def test_listed_projects_name_their_collaborators_from_one_query(
    client: TestClient[Any], user_factory: Callable[..., Person]
) -> None:
    """The gallery names everyone on a project (owners first) without a request per card."""
    alice, bob = user_factory("Alice"), user_factory("Bob")
    shared = create(client, alice, name="Shared Film")
    create(client, alice, name="Solo Film")
    r = client.post(
        f"/api/projects/{shared['id']}/members",
        headers=alice.headers,
        json={"email": bob.user["email"], "role": "editor"},
    )
    assert r.status_code in (200, 201), r.text

    listed = client.get("/api/projects", headers=alice.headers).json()["items"]
    people = {p["name"]: [(c["name"], c["role"]) for c in p["collaborators"]] for p in listed}
    assert people == {
        "Shared Film": [("Alice", "owner"), ("Bob", "editor")],
        "Solo Film": [("Alice", "owner")],
    }

    # The same listing, run here to watch its SQL: one statement for the page, whatever its size.
    services = client.app.state.services
    index = services.studio.index
    user = services.accounts.authenticate(alice.token)
    statements: list[str] = []
    index.db.conn.set_trace_callback(statements.append)
    try:
        page = services.projects.search(user)
    finally:
        index.db.conn.set_trace_callback(None)
    assert len(page["items"]) == 2
    assert [s for s in statements if s.lstrip().upper().startswith("SELECT")] == [statements[-1]], statements

    seen_by_bob = client.get(f"/api/projects/{shared['id']}", headers=bob.headers).json()
    assert [c["name"] for c in seen_by_bob["collaborators"]] == ["Alice", "Bob"]
    assert {c["id"] for c in seen_by_bob["collaborators"]} == {alice.user["id"], bob.user["id"]}


def test_listed_collaborators_follow_every_change_of_people(
    client: TestClient[Any], user_factory: Callable[..., Person], guest: Person
) -> None:
    """A role change, a removal, a guest who registers under a name and an erased account all
    show on the gallery cards at once (the collaborators are kept on the project's row)."""
    alice, bob, carol = user_factory("Alice"), user_factory("Bob"), user_factory("Carol")
    film = create(client, alice, name="Film")
    by_guest = create(client, guest, name="Guest Film")

    def share(owner: Person, project: dict[str, Any], who: Person, role: str) -> None:
        r = client.post(
            f"/api/projects/{project['id']}/members",
            headers=owner.headers,
            json={"email": who.user["email"], "role": role},
        )
        assert r.status_code == 200, r.text

    def people(project: dict[str, Any]) -> list[tuple[str, str]]:
        listed = client.get("/api/projects", headers=alice.headers).json()["items"]
        card = next(p for p in listed if p["id"] == project["id"])
        got = client.get(f"/api/projects/{project['id']}", headers=alice.headers).json()
        assert got["collaborators"] == card["collaborators"]
        return [(c["name"], c["role"]) for c in card["collaborators"]]

    share(alice, film, carol, "viewer")
    share(alice, film, bob, "editor")
    assert people(film) == [("Alice", "owner"), ("Bob", "editor"), ("Carol", "viewer")]
    share(alice, film, carol, "owner")
    assert people(film) == [("Alice", "owner"), ("Carol", "owner"), ("Bob", "editor")]
    r = client.delete(f"/api/projects/{film['id']}/members/{bob.user['id']}", headers=alice.headers)
    assert r.status_code == 204, r.text
    assert people(film) == [("Alice", "owner"), ("Carol", "owner")]
    r = client.delete("/api/me", headers=carol.headers)
    assert r.status_code == 204, r.text
    assert people(film) == [("Alice", "owner")]

    share(guest, by_guest, alice, "viewer")
    assert people(by_guest) == [(guest.user["name"], "owner"), ("Alice", "viewer")]
    r = client.post(
        "/api/auth/register",
        headers=guest.headers,
        json={"email": "dana@example.org", "password": "correct horse battery", "name": "Dana"},
    )
    assert r.status_code == 201, r.text
    assert people(by_guest) == [("Dana", "owner"), ("Alice", "viewer")]
