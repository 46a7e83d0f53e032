"""Uploads are committed as Git LFS objects that the real git-lfs tools accept."""

from __future__ import annotations

import hashlib
import io
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.conftest import LiveServer, git, start_server, stop_server
from tests.media import near, video


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    s = start_server(
        tmp_path_factory.mktemp("assets"), STUDIO_RATE_LIMIT_AUTH="1000", STUDIO_SEED_SAMPLES="false"
    )
    yield s
    stop_server(s)


def png(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buf, format="PNG")
    return buf.getvalue()


def test_an_uploaded_image_is_an_lfs_object_in_a_clean_repository(server: LiveServer, tmp_path: Path) -> None:
    guest = httpx.post(f"{server.url}/api/auth/guest").json()
    h = {"Authorization": f"Bearer {guest['token']}"}
    project = httpx.post(f"{server.url}/api/projects", headers=h, json={"name": "Media"}).json()
    data = png((10, 200, 30))
    r = httpx.post(f"{server.url}/api/projects/{project['id']}/assets", headers=h,
                   files={"file": ("../Hero Shot.PNG", data, "image/png")}, data={"folder": "Characters"})  # fmt: skip
    assert r.status_code == 201, r.text
    asset = r.json()
    assert set(asset) == {"id", "name", "kind", "path", "sha256", "size"}
    assert asset["path"] == "01_Assets/Generative_Assets/Characters/Hero_Shot.png"
    assert (asset["kind"], asset["size"], asset["sha256"]) == (
        "image",
        len(data),
        hashlib.sha256(data).hexdigest(),
    )

    root = server.workspace / project["path"]
    assert (root / asset["path"]).read_bytes() == data
    assert "Upload Hero_Shot.png" in git(root, "log", "-1", "--format=%s")
    assert git(root, "status", "--porcelain") == ""
    assert git(root, "show", f"HEAD:{asset['path']}").startswith("version https://git-lfs.github.com/spec/v1")
    assert asset["path"] in git(root, "lfs", "ls-files", "--name-only")
    git(root, "lfs", "fsck")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(root), str(clone)], check=True, capture_output=True)
    assert (clone / asset["path"]).read_bytes() == data  # git-lfs checked the real image out

    download = httpx.get(f"{server.url}/api/projects/{project['id']}/assets/{asset['id']}/file", headers=h)
    assert download.status_code == 200
    assert download.content == data
    assert download.headers["etag"] == f'"{asset["sha256"]}"'
    part = httpx.get(f"{server.url}/api/projects/{project['id']}/assets/{asset['id']}/file",
                     headers={**h, "Range": "bytes=10-19"})  # fmt: skip
    assert part.status_code == 206
    assert part.content == data[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(data)}"
    tail = httpx.get(f"{server.url}/api/projects/{project['id']}/assets/{asset['id']}/file",
                     headers={**h, "Range": "bytes=-5"})  # fmt: skip
    assert tail.content == data[-5:]
    beyond = httpx.get(f"{server.url}/api/projects/{project['id']}/assets/{asset['id']}/file",
                       headers={**h, "Range": f"bytes={len(data) + 5}-"})  # fmt: skip
    assert beyond.status_code == 416
    cached = httpx.get(f"{server.url}/api/projects/{project['id']}/assets/{asset['id']}/file",
                       headers={**h, "If-None-Match": download.headers["etag"]})  # fmt: skip
    assert cached.status_code == 304
    listed = httpx.get(f"{server.url}/api/projects/{project['id']}/assets", headers=h).json()
    assert [a["id"] for a in listed] == [asset["id"]]

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        tasks = httpx.get(f"{server.url}/api/projects/{project['id']}/tasks", headers=h).json()
        if tasks and tasks[0]["state"] in ("succeeded", "failed"):
            break
        time.sleep(0.1)
    assert tasks[0]["kind"] == "asset.thumbnail"
    assert tasks[0]["state"] == "succeeded", tasks[0]["error"]
    thumb = root / tasks[0]["outputs"][0]["path"]
    assert Image.open(thumb).size == (64, 48)


def test_viewers_and_strangers_cannot_upload(server: LiveServer) -> None:
    def account(name: str) -> dict[str, Any]:
        body = {"email": f"{name}@assets.example.org", "password": "long enough secret", "name": name}
        return dict(httpx.post(f"{server.url}/api/auth/register", json=body).json())

    owner, viewer, stranger = account("owner"), account("viewer"), account("stranger")
    ho = {"Authorization": f"Bearer {owner['token']}"}
    pid = httpx.post(f"{server.url}/api/projects", headers=ho, json={"name": "Guarded"}).json()["id"]
    httpx.post(f"{server.url}/api/projects/{pid}/members", headers=ho,
               json={"email": "viewer@assets.example.org", "role": "viewer"})  # fmt: skip
    files = {"file": ("x.png", png((1, 2, 3)), "image/png")}
    r = httpx.post(
        f"{server.url}/api/projects/{pid}/assets",
        headers={"Authorization": f"Bearer {viewer['token']}"},
        files=files,
    )
    assert r.status_code == 403
    r = httpx.post(
        f"{server.url}/api/projects/{pid}/assets",
        headers={"Authorization": f"Bearer {stranger['token']}"},
        files=files,
    )
    assert r.status_code == 404
    r = httpx.post(
        f"{server.url}/api/projects/{pid}/assets", headers=ho, files={"folder": (None, "Characters")}
    )
    assert r.status_code == 422
    assert "multipart field 'file'" in r.json()["detail"]


def wait_for_thumbnail_task(server: LiveServer, h: dict[str, str], project_id: str, asset_id: str,
                            after: int = 0) -> dict[str, Any]:  # fmt: skip
    """The thumbnail task of ``asset_id`` (the one past the first ``after``), once it has ended."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        tasks = httpx.get(f"{server.url}/api/projects/{project_id}/tasks", headers=h).json()
        mine = sorted((t for t in tasks if t["kind"] == "asset.thumbnail" and t["params"].get("asset") == asset_id),
                      key=lambda t: t["created_at"])  # fmt: skip
        if len(mine) > after and mine[after]["state"] in ("succeeded", "failed"):
            return dict(mine[after])
        time.sleep(0.1)
    raise AssertionError(f"the thumbnail of {asset_id} never finished")


def served_thumbnail(server: LiveServer, h: dict[str, str], project_id: str, asset_id: str) -> Image.Image:
    r = httpx.get(f"{server.url}/api/projects/{project_id}/assets/{asset_id}/thumbnail", headers=h)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    return Image.open(io.BytesIO(r.content)).convert("RGB")


@pytest.mark.parametrize(
    ("name", "codec", "size", "shown"),
    [
        ("Pier at dusk.mp4", "mpeg4", (640, 360), (320, 180)),
        ("portrait.webm", "libvpx-vp9", (72, 128), (72, 128)),
    ],
)
def test_an_uploaded_video_gets_a_preview_of_its_first_picture(
    server: LiveServer, tmp_path: Path, name: str, codec: str, size: tuple[int, int], shown: tuple[int, int]
) -> None:
    guest = httpx.post(f"{server.url}/api/auth/guest").json()
    h = {"Authorization": f"Bearer {guest['token']}"}
    project = httpx.post(f"{server.url}/api/projects", headers=h, json={"name": "Footage"}).json()
    data = video(tmp_path / name, codec, *size, [(0, 0, 0), (210, 120, 30), (30, 60, 200)])
    r = httpx.post(
        f"{server.url}/api/projects/{project['id']}/assets", headers=h, files={"file": (name, data)}
    )
    assert r.status_code == 201, r.text
    asset = r.json()
    assert asset["kind"] == "video"

    task = wait_for_thumbnail_task(server, h, project["id"], asset["id"])
    assert task["state"] == "succeeded", task["error"]
    img = served_thumbnail(server, h, project["id"], asset["id"])
    assert img.size == shown  # the video's shape, at most 320 px
    # The black first frame is passed over for the first one that shows something.
    centre = img.getpixel((img.width // 2, img.height // 2))
    assert near(centre, (210, 120, 30)), centre


def test_a_replaced_video_gets_a_new_preview_and_a_broken_one_says_why(
    server: LiveServer, tmp_path: Path
) -> None:
    guest = httpx.post(f"{server.url}/api/auth/guest").json()
    h = {"Authorization": f"Bearer {guest['token']}"}
    pid = httpx.post(f"{server.url}/api/projects", headers=h, json={"name": "Reshoot"}).json()["id"]
    first = video(tmp_path / "take.mp4", "mpeg4", 160, 90, [(200, 40, 40)])
    asset = httpx.post(
        f"{server.url}/api/projects/{pid}/assets", headers=h, files={"file": ("take.mp4", first)}
    ).json()
    assert wait_for_thumbnail_task(server, h, pid, asset["id"])["state"] == "succeeded"
    before = httpx.get(f"{server.url}/api/projects/{pid}/assets/{asset['id']}/thumbnail", headers=h)
    # Kept by the browser but asked about every time: the same URL will show the new one
    assert before.headers["cache-control"] == "private, no-cache"
    unchanged = httpx.get(f"{server.url}/api/projects/{pid}/assets/{asset['id']}/thumbnail",
                          headers={**h, "If-None-Match": before.headers["etag"]})  # fmt: skip
    assert unchanged.status_code == 304

    # A new version, square and green: the preview follows it
    second = video(tmp_path / "take2.mp4", "mpeg4", 96, 96, [(40, 200, 40)])
    r = httpx.put(f"{server.url}/api/projects/{pid}/assets/{asset['id']}/file", headers=h,
                  files={"file": ("take.mp4", second)})  # fmt: skip
    assert r.status_code == 200, r.text
    assert wait_for_thumbnail_task(server, h, pid, asset["id"], after=1)["state"] == "succeeded"
    img = served_thumbnail(server, h, pid, asset["id"])
    assert img.size == (96, 96)
    assert near(img.getpixel((48, 48)), (40, 200, 40))
    again = httpx.get(f"{server.url}/api/projects/{pid}/assets/{asset['id']}/thumbnail",
                      headers={**h, "If-None-Match": before.headers["etag"]})  # fmt: skip
    assert again.status_code == 200  # not the old preview's 304

    # A file that only claims to be video: the task fails saying what to do, no preview is served
    broken = httpx.post(f"{server.url}/api/projects/{pid}/assets", headers=h,
                        files={"file": ("interview.mov", b"\x00\x00\x00\x18ftypqt  " + b"\x13" * 4000)}).json()  # fmt: skip
    task = wait_for_thumbnail_task(server, h, pid, broken["id"])
    assert task["state"] == "failed"
    assert "'01_Assets/Uploads/interview.mov' could not be read as a video" in task["error"]
    assert "export it as H.264 MP4" in task["error"]
    r = httpx.get(f"{server.url}/api/projects/{pid}/assets/{broken['id']}/thumbnail", headers=h)
    assert r.status_code == 404
    activity = httpx.get(f"{server.url}/api/projects/{pid}/activity", headers=h).json()
    assert any("No thumbnail for 01_Assets/Uploads/interview.mov" in str(a) for a in activity)


def test_files_the_studio_does_not_take_are_refused_in_words(server: LiveServer) -> None:
    guest = httpx.post(f"{server.url}/api/auth/guest").json()
    h = {"Authorization": f"Bearer {guest['token']}"}
    pid = httpx.post(f"{server.url}/api/projects", headers=h, json={"name": "Picky"}).json()["id"]
    kinds = httpx.get(f"{server.url}/api/asset-kinds", headers=h).json()
    assert kinds["max_bytes"] == 2 * 1024**3
    assert kinds["kinds"]["video"] == [".mp4", ".mov", ".webm"]
    assert ".png" in kinds["kinds"]["image"]
    assert httpx.get(f"{server.url}/api/asset-kinds").status_code == 401

    for name, words in (
        ("shot list.txt", "does not take .txt files"),
        ("README", "does not take files without a type ending"),
    ):
        r = httpx.post(f"{server.url}/api/projects/{pid}/assets", headers=h, files={"file": (name, b"notes")})
        assert r.status_code == 415, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["detail"].startswith(f"{name}: the studio {words}")
        assert "It takes images (.png, .jpg" in r.json()["detail"]
    assert httpx.get(f"{server.url}/api/projects/{pid}/assets", headers=h).json() == []
