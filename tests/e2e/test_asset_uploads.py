"""The Asset Browser takes files: from the file picker and dropped on it, each with its progress
and its status until its preview is there; files it cannot take are refused in words; an asset
can be given a new version, which keeps its id and marks the nodes using it out of date."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import LiveServer, git, start_server, stop_server
from tests.e2e.studio_helpers import (
    CARD,
    NODE,
    axe_violations,
    open_project,
    project_dir,
    screenshot,
    start_as_guest,
)
from tests.e2e.test_stale_nodes import edit_from_another_tool
from tests.media import near, png, video

pytestmark = pytest.mark.e2e
LIMIT = 300_000  # bytes: small, so a "too large" file is quick to make


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(
        tmp_path_factory.mktemp("workspace"), STUDIO_SEED_SAMPLES="false", STUDIO_MAX_UPLOAD_BYTES=str(LIMIT)
    )
    yield server
    stop_server(server)


def drop_files(page: Page, selector: str, files: list[tuple[str, str, bytes]]) -> None:
    """What dragging files from the desktop onto ``selector`` does: dragenter, dragover, drop,
    carrying the files."""
    transfer = page.evaluate_handle(
        """files => {
            const dt = new DataTransfer();
            for (const f of files) {
                const bytes = Uint8Array.from(atob(f.data), c => c.charCodeAt(0));
                dt.items.add(new File([bytes], f.name, {type: f.type}));
            }
            return dt;
        }""",
        [{"name": n, "type": t, "data": base64.b64encode(d).decode()} for n, t, d in files],
    )
    for kind in ("dragenter", "dragover", "drop"):
        page.dispatch_event(selector, kind, {"dataTransfer": transfer})


def pick_files(page: Page, paths: list[Path]) -> None:
    with page.expect_file_chooser() as chooser:
        page.get_by_test_id("asset-upload").click()
    assert chooser.value.is_multiple()
    chooser.value.set_files([str(p) for p in paths])


def thumbnail_of(page: Page, name: str) -> dict[str, Any]:
    """The shown preview of the asset called ``name``: its size and the colour at its centre."""
    img = page.locator(f'[data-testid=asset][data-name="{name}"] [data-testid=asset-thumb-img]')
    expect(img).to_be_visible(timeout=20_000)
    return dict(
        img.evaluate(
            """img => {
                const c = document.createElement('canvas');
                c.width = img.naturalWidth; c.height = img.naturalHeight;
                const g = c.getContext('2d'); g.drawImage(img, 0, 0);
                const p = g.getImageData(c.width >> 1, c.height >> 1, 1, 1).data;
                return {width: img.naturalWidth, height: img.naturalHeight, centre: [p[0], p[1], p[2]]};
            }"""
        )
    )


def test_upload_by_picker_and_by_drop_then_replace(page: Page, studio: LiveServer, tmp_path: Path) -> None:
    start_as_guest(page, studio)
    page.get_by_test_id("tutorial-skip").click()
    page.get_by_test_id("new-project-name").fill("Harbour Film")
    page.get_by_test_id("new-project-create").click()
    expect(page.locator(CARD).filter(has_text="Harbour Film")).to_be_visible()
    project_id = open_project(page, "Harbour Film")
    browser = page.get_by_test_id("asset-browser")
    expect(browser.get_by_test_id("asset-upload")).to_be_visible()
    expect(page.locator("#assets-hint")).to_contain_text("up to 293 KB each")

    # An image from the file picker
    poster = tmp_path / "poster.png"
    poster.write_bytes(png((220, 40, 40), (240, 120)))
    pick_files(page, [poster])
    row = browser.get_by_test_id("upload").filter(has_text="poster.png")
    expect(row).to_have_attribute("data-phase", "ready", timeout=20_000)
    expect(row.get_by_test_id("upload-status")).to_have_text("Upload done; ready")
    shown = thumbnail_of(page, "poster.png")
    assert (shown["width"], shown["height"]) == (240, 120)
    assert near(shown["centre"], (220, 40, 40)), shown

    # A video dropped on the Asset Browser: its preview is its first picture that is not black,
    # in the video's shape
    clip = video(tmp_path / "dusk.webm", "libvpx-vp9", 160, 90, [(0, 0, 0), (30, 60, 200)])
    drop_files(page, "[data-testid=asset-browser]", [("dusk.webm", "video/webm", clip)])
    row = browser.get_by_test_id("upload").filter(has_text="dusk.webm")
    expect(row).to_have_attribute("data-phase", "ready", timeout=20_000)
    shown = thumbnail_of(page, "dusk.webm")
    assert (shown["width"], shown["height"]) == (160, 90)
    assert near(shown["centre"], (30, 60, 200)), shown
    expect(browser.get_by_test_id("asset")).to_have_count(2)

    # A bigger file on a slow line: its own progress bar moves as the bytes go
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions",
             {"offline": False, "latency": 20, "downloadThroughput": -1, "uploadThroughput": 100_000})  # fmt: skip
    still = tmp_path / "storyboard.png"
    still.write_bytes(png((90, 90, 90), (64, 64)) + bytes(range(256)) * 900)  # 230 KB, a PNG with a tail
    pick_files(page, [still])
    row = browser.get_by_test_id("upload").filter(has_text="storyboard.png")
    expect(row.get_by_test_id("upload-status")).to_have_text(re.compile(r"Uploading, [1-9]\d?% of 2\d\d KB"))
    bar = row.get_by_role("progressbar", name="Uploading storyboard.png")
    sent = float(bar.get_attribute("value") or 0)
    assert 0 < sent < still.stat().st_size
    cdp.send("Network.emulateNetworkConditions",
             {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})  # fmt: skip
    expect(row).to_have_attribute("data-phase", "ready", timeout=20_000)
    expect(browser.get_by_test_id("asset")).to_have_count(3)

    # Files the studio cannot take are refused in words, before anything is sent
    drop_files(page, "[data-testid=asset-browser]", [("notes.txt", "text/plain", b"shot list")])
    huge = tmp_path / "huge.png"
    huge.write_bytes(png((1, 2, 3)) + b"\0" * (LIMIT + 10_000))
    pick_files(page, [huge])
    alerts = browser.get_by_role("alert")
    expect(alerts.filter(has_text="notes.txt: the studio does not take .txt files")).to_be_visible()
    expect(
        alerts.filter(has_text=re.compile(r"huge\.png is 303 KB, larger than the 293 KB this studio takes"))
    ).to_be_visible()
    expect(browser.get_by_test_id("asset")).to_have_count(3)
    # The server refuses them too, saying the same (for clients that do not check first)
    token = page.evaluate("localStorage.getItem('studio.token')")
    big = page.request.post(f"{studio.url}/api/projects/{project_id}/assets", headers={"Authorization": f"Bearer {token}"},
                            multipart={"file": {"name": "huge.png", "mimeType": "image/png", "buffer": huge.read_bytes()}})  # fmt: skip
    assert big.status == 413
    assert big.json()["detail"] == "The request body is larger than this server accepts (at most 293 KB)."
    assert axe_violations(page) == []
    screenshot(page, "asset-uploads-desktop")

    # A node starts from the image; the image gets a new version, chosen from the keyboard
    image_row = browser.locator('[data-testid=asset][data-name="poster.png"]')
    asset_id = image_row.get_attribute("data-asset-id")
    edit_from_another_tool(studio, project_id, token, ["canvases", "main", "nodes", "poster-gen"],
                           {"type": "image.diffusion", "x": 60, "y": 60, "params": {"init_image": asset_id}})  # fmt: skip
    node = page.locator(f'{NODE}[data-id="poster-gen"]')
    expect(node).to_be_visible()
    greener = tmp_path / "poster-v2.png"
    greener.write_bytes(png((40, 200, 60), (240, 120)))
    with page.expect_file_chooser() as chooser:
        image_row.get_by_test_id("asset-replace").press("Enter")  # focus it, then the key
    assert not chooser.value.is_multiple()
    chooser.value.set_files(str(greener))

    row = browser.get_by_test_id("upload").filter(has_text="New version of poster.png (poster-v2.png)")
    expect(row).to_have_attribute("data-phase", "ready", timeout=20_000)
    expect(row.get_by_test_id("upload-note")).to_have_text("1 node that uses it is now out of date.")
    # Same asset, new picture; the node that uses it is out of date and its owner is told
    expect(browser.get_by_test_id("asset")).to_have_count(3)
    assert image_row.get_attribute("data-asset-id") == asset_id
    page.wait_for_function(
        """name => {
            const img = document.querySelector(`[data-testid=asset][data-name="${name}"] [data-testid=asset-thumb-img]`);
            if (!img || !img.naturalWidth) return false;
            const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
            const g = c.getContext('2d'); g.drawImage(img, 0, 0);
            const p = g.getImageData(c.width >> 1, c.height >> 1, 1, 1).data;
            return p[1] > 150 && p[0] < 100;
        }""",
        arg="poster.png",
        timeout=20_000,
    )
    expect(node.get_by_test_id("node-stale")).to_be_visible()
    expect(page.get_by_test_id("notice")).to_contain_text("replaced poster.png")
    folder = project_dir(studio, project_id)
    assert (folder / "01_Assets/Uploads/poster.png").read_bytes() == greener.read_bytes()
    assert "poster.png changed" in git(folder, "log", "--format=%s")

    # A file of another kind cannot be a new version of the image
    with page.expect_file_chooser() as chooser:
        image_row.get_by_test_id("asset-replace").click()
    chooser.value.set_files(str(tmp_path / "dusk.webm"))
    expect(
        alerts.filter(has_text="dusk.webm is a video file; it cannot replace an image asset")
    ).to_be_visible()
