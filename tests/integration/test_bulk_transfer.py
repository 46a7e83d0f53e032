"""The gallery's bulk export is one file that Import takes back as it is: every project inside
comes back as a Git repository with its whole history and its media; a damaged file is refused
in words and adds nothing."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from app.settings import Settings
from tests.conftest import Person, git
from tests.media import png, video


def create(client: TestClient[Any], who: Person, name: str, **body: Any) -> dict[str, Any]:
    r = client.post("/api/projects", headers=who.headers, json={"name": name, **body})
    assert r.status_code == 201, r.text
    return dict(r.json())


def upload(client: TestClient[Any], who: Person, pid: str, name: str, data: bytes) -> dict[str, Any]:
    r = client.post(f"/api/projects/{pid}/assets", headers=who.headers, files={"file": (name, data)})
    assert r.status_code == 201, r.text
    return dict(r.json())


def bulk_export(client: TestClient[Any], who: Person, ids: list[str]) -> bytes:
    r = client.post("/api/projects/bulk", headers=who.headers, json={"action": "export", "ids": ids})
    assert r.status_code == 200, r.text
    return bytes(r.content)


def import_(client: TestClient[Any], who: Person, data: bytes, name: str = "projects.zip") -> Any:
    return client.post("/api/projects/import", headers=who.headers, files={"file": (name, data)})


def listing(client: TestClient[Any], who: Person) -> list[dict[str, Any]]:
    return list(client.get("/api/projects", headers=who.headers, params={"archived": "all"}).json()["items"])


def rezip(data: bytes, change: dict[str, bytes]) -> bytes:
    """The same zip with some members' bytes swapped (damage done on the way)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, change.get(info.filename, src.read(info)))
    return out.getvalue()


@pytest.fixture
def three(client: TestClient[Any], guest: Person, tmp_path: Path) -> dict[str, Any]:
    """Three projects, two with media (one image shared by both, a video), one with extra history."""
    films = [
        create(client, guest, f"Film {n}", template=t)
        for n, t in enumerate(["three-act", "blank", "five-act"])
    ]
    image = png((200, 40, 40), (96, 64))
    clip = video(tmp_path / "clip.mp4", "mpeg4", 64, 36, [(40, 200, 40)])
    media = {
        films[0]["id"]: [upload(client, guest, films[0]["id"], "poster.png", image)],
        films[1]["id"]: [
            upload(client, guest, films[1]["id"], "poster.png", image),
            upload(client, guest, films[1]["id"], "clip.mp4", clip),
        ],
    }
    client.patch(
        f"/api/projects/{films[2]['id']}", headers=guest.headers, json={"description": "more history"}
    )
    return {"films": films, "media": media, "bytes": {"poster.png": image, "clip.mp4": clip}}


def test_a_bulk_export_imports_back_whole_with_history_and_media(
    client: TestClient[Any], guest: Person, user_factory: Any, settings: Settings, three: dict[str, Any]
) -> None:
    films = three["films"]
    exported = bulk_export(client, guest, [f["id"] for f in films])
    with zipfile.ZipFile(io.BytesIO(exported)) as zf:
        names = zf.namelist()
    # One bundle per project; the shared image once, the video once
    assert sorted(n for n in names if n.endswith(".bundle")) == [
        "Film_0.bundle",
        "Film_1.bundle",
        "Film_2.bundle",
    ]
    oids = {hashlib.sha256(b).hexdigest() for b in three["bytes"].values()}
    assert sorted(n for n in names if n.startswith("lfs/")) == sorted(
        f"lfs/objects/{o[:2]}/{o[2:4]}/{o}" for o in oids
    )

    # Someone else imports the file as it is: three new projects of theirs
    ana = user_factory("Ana")
    r = import_(client, ana, exported)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["total"] == 3
    assert sorted(p["name"] for p in body["items"]) == ["Film 0", "Film 1", "Film 2"]
    assert all(p["role"] == "owner" and p["missing_media"] == [] for p in body["items"])
    assert sorted(p["name"] for p in listing(client, ana)) == ["Film 0", "Film 1", "Film 2"]

    for original in films:
        copy = next(p for p in body["items"] if p["name"] == original["name"])
        assert copy["template"] == original["template"]
        before, after = settings.workspace_root / original["path"], settings.workspace_root / copy["path"]
        # The whole history, every commit as it was
        assert (
            git(after, "log", "--format=%H").split()[-len(git(before, "log", "--format=%H").split()) :]
            == git(before, "log", "--format=%H").split()
        )
        assert git(after, "status", "--porcelain") == ""
        git(after, "lfs", "fsck")
        # The media are there, the real bytes, and served to their new owner
        for asset in three["media"].get(original["id"], []):
            assert (after / asset["path"]).read_bytes() == three["bytes"][asset["name"]]
            served = client.get(f"/api/projects/{copy['id']}/assets/{asset['id']}/file", headers=ana.headers)
            assert served.status_code == 200
            assert served.content == three["bytes"][asset["name"]]


def test_a_damaged_bulk_export_is_refused_and_adds_nothing(
    client: TestClient[Any], guest: Person, settings: Settings, three: dict[str, Any]
) -> None:
    exported = bulk_export(client, guest, [f["id"] for f in three["films"]])
    projects_before = sorted(p.name for p in (settings.workspace_root / "Projects").iterdir())
    listed_before = listing(client, guest)
    with zipfile.ZipFile(io.BytesIO(exported)) as zf:
        second = zf.read("Film_1.bundle")
        obj = next(n for n in zf.namelist() if n.startswith("lfs/"))

    damaged = {
        "a bundle cut short": (rezip(exported, {"Film_1.bundle": second[: len(second) // 2]}), "Film_1.bundle"),
        "a media file changed": (rezip(exported, {obj: b"not the picture it was"}), "is damaged"),
        "a bundle that is not one": (rezip(exported, {"Film_2.bundle": b"hello"}), "Film_2.bundle: it is not a git bundle"),
        "the zip cut short": (exported[: len(exported) // 3], "not a zip archive"),
    }  # fmt: skip
    for what, (data, words) in damaged.items():
        r = import_(client, guest, data)
        assert r.status_code == 422, (what, r.text)
        assert words in r.json()["detail"], (what, r.json()["detail"])
        assert listing(client, guest) == listed_before, what
        assert sorted(p.name for p in (settings.workspace_root / "Projects").iterdir()) == projects_before, (
            what
        )
        assert list((settings.workspace_root / ".staging").iterdir()) == [], what
    r = import_(client, guest, damaged["a bundle cut short"][0])
    assert "Nothing was imported" in r.json()["detail"]

    # A name is for importing one project
    r = client.post("/api/projects/import", headers=guest.headers, files={"file": ("p.zip", exported)},
                    data={"name": "Renamed"})  # fmt: skip
    assert r.status_code == 422
    assert "holds several" in r.json()["detail"]


def test_a_failure_while_moving_projects_in_takes_back_the_ones_already_in(
    client: TestClient[Any],
    guest: Person,
    settings: Settings,
    three: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exported = bulk_export(client, guest, [f["id"] for f in three["films"]])
    transfers = client.app.state.services.transfers
    real, calls = transfers._register, []

    def register_then_fail(*args: Any) -> None:  # the disk or the index gives out on the third
        calls.append(args)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real(*args)

    monkeypatch.setattr(transfers, "_register", register_then_fail)
    projects_before = sorted(p.name for p in (settings.workspace_root / "Projects").iterdir())
    ids_before = {p["id"] for p in listing(client, guest)}
    r = import_(client, guest, exported)
    assert r.status_code == 500
    assert len(calls) == 3
    assert {p["id"] for p in listing(client, guest)} == ids_before
    assert sorted(p.name for p in (settings.workspace_root / "Projects").iterdir()) == projects_before
    assert list((settings.workspace_root / ".staging").iterdir()) == []
    db = client.app.state.services.projects.index.db
    assert db.execute("SELECT count(*) FROM projects").fetchone()[0] == len(ids_before)
    assert db.execute("SELECT count(*) FROM activity WHERE kind = 'project.imported'").fetchone()[0] == 0


def test_one_bundle_with_media_imports_and_names_the_media_it_lacks(
    client: TestClient[Any], guest: Person, settings: Settings, three: dict[str, Any]
) -> None:
    film = three["films"][1]
    r = client.get(f"/api/projects/{film['id']}/export", headers=guest.headers, params={"format": "bundle"})
    r = import_(client, guest, r.content, "Film_1.bundle")
    assert r.status_code == 201, r.text
    copy = r.json()
    # A bundle carries history, not LFS media: the import says which files it lacks
    assert copy["missing_media"] == sorted(a["path"] for a in three["media"][film["id"]])
    root = settings.workspace_root / copy["path"]
    assert git(root, "status", "--porcelain") == ""
