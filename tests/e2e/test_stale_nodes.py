"""Stale nodes in the studio: when an asset a node uses is replaced, the node on the canvas, its
line in the Project Browser and the Properties Inspector say it is out of date and why; the
person can keep it as it is (the mark goes, and the repository's next commit drops it). The
Notification area's notice about it goes with the mark, wherever the mark is cleared."""

from __future__ import annotations

import asyncio
import io
import re
import threading
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import Page, expect
from pycrdt import Doc, Map

from sync.client import SyncClient
from sync.docmodel import set_path
from tests.conftest import LiveServer
from tests.e2e.studio_helpers import (
    CARD,
    NODE,
    axe_violations,
    open_project,
    project_dir,
    screenshot,
    start_as_guest,
    wait_for_commit,
)

pytestmark = pytest.mark.e2e


def png(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 32), colour).save(buf, format="PNG")
    return buf.getvalue()


def edit_from_another_tool(
    studio: LiveServer, project_id: str, token: str, path: list[str], value: Any
) -> None:
    """Write into the project's document through a second sync client (another person's tool)."""
    change_from_another_tool(studio, project_id, token, lambda doc: set_path(doc, path, value))


def change_from_another_tool(
    studio: LiveServer, project_id: str, token: str, mutate: Callable[[Doc[Any]], Any]
) -> None:
    """Change the project's document through a second sync client, in a thread of its own:
    Playwright's sync API owns this thread's event loop."""

    async def run() -> None:
        async with SyncClient(studio.url.replace("http", "ws"), project_id, token) as client:
            mutate(client.doc)
            await client.flushed()

    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(run())
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(30)
    assert not thread.is_alive(), "the other tool's edit did not finish in 30 s"
    assert not errors, errors


def test_a_node_whose_asset_was_replaced_is_marked_and_can_be_kept(page: Page, studio: LiveServer) -> None:
    # Given a project with an image asset and a generator node that starts from it
    start_as_guest(page, studio)
    page.get_by_test_id("tutorial-skip").click()
    page.get_by_test_id("new-project-name").fill("Pier at Night")
    page.get_by_test_id("new-project-create").click()
    expect(page.locator(CARD).filter(has_text="Pier at Night")).to_be_visible()
    project_id = open_project(page, "Pier at Night")
    token = page.evaluate("localStorage.getItem('studio.token')")
    auth = {"Authorization": f"Bearer {token}"}
    upload = page.request.post(
        f"{studio.url}/api/projects/{project_id}/assets",
        headers=auth,
        multipart={"file": {"name": "pier.png", "mimeType": "image/png", "buffer": png((20, 40, 90))}},
    )
    assert upload.status == 201, upload.text()
    asset = upload.json()
    edit_from_another_tool(
        studio,
        project_id,
        token,
        ["canvases", "main", "nodes", "pier-gen"],
        {"type": "image.diffusion", "x": 120, "y": 80, "params": {"init_image": asset["path"], "steps": 20}},
    )
    node = page.locator(f'{NODE}[data-id="pier-gen"]')
    expect(node).to_be_visible()
    expect(node.get_by_test_id("node-stale")).to_have_count(0)

    # When the asset's file is replaced
    replaced = page.request.put(
        f"{studio.url}/api/projects/{project_id}/assets/{asset['id']}/file",
        headers=auth,
        multipart={"file": {"name": "pier.png", "mimeType": "image/png", "buffer": png((200, 120, 40))}},
    )
    assert replaced.status == 200, replaced.text()

    # Then the node says it is out of date, on the canvas and to screen readers
    expect(node.get_by_test_id("node-stale")).to_contain_text("Out of date")
    expect(node).to_have_attribute("aria-label", "Image generator node, out of date")
    expect(page.get_by_test_id("browser-stale")).to_have_count(1)

    # And the Notification area says so, with a way to go to the node
    told = page.get_by_test_id("notice")
    expect(told).to_have_text(re.compile(r"A node is out of date: .* replaced pier\.png\."))
    told.get_by_test_id("notice-show").click()
    expect(node).to_have_class(re.compile(r"\bselected\b"))  # selected on the canvas too

    # Where the inspector says why, with a way to regenerate or keep it
    notice = page.get_by_test_id("stale-notice")
    expect(notice).to_contain_text("replaced pier.png")
    expect(notice.get_by_test_id("stale-regenerate")).to_be_visible()
    assert axe_violations(page) == []
    screenshot(page, "stale-node-desktop")
    folder = project_dir(studio, project_id)
    wait_for_commit(folder, lambda c: "stale" in c["nodes"].get("pier-gen", {}))

    # And after a reload the notice is still there: the mark in the document brings it back
    page.reload()
    expect(node).to_be_visible()
    expect(page.get_by_test_id("notice")).to_have_text(
        re.compile(r"A node is out of date: .* replaced pier\.png\.")
    )
    page.get_by_test_id("notice").get_by_test_id("notice-show").click()
    expect(node).to_have_class(re.compile(r"\bselected\b"))
    notice = page.get_by_test_id("stale-notice")
    expect(notice).to_contain_text("replaced pier.png")

    # When they keep it as it is (from the keyboard), the mark goes here and in the repository
    page.get_by_test_id("notice-dismiss").click()
    expect(page.get_by_test_id("notice")).to_have_count(0)
    notice.get_by_test_id("stale-clear").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("stale-notice")).to_have_count(0)
    expect(node.get_by_test_id("node-stale")).to_have_count(0)
    expect(page.get_by_test_id("browser-stale")).to_have_count(0)
    canvas = wait_for_commit(
        folder, lambda c: "pier-gen" in c["nodes"] and "stale" not in c["nodes"]["pier-gen"]
    )
    assert canvas["nodes"]["pier-gen"]["params"]["init_image"] == asset["path"]


def test_the_notice_about_a_stale_node_goes_when_its_mark_is_cleared(page: Page, studio: LiveServer) -> None:
    # Given a node that starts from an uploaded image
    start_as_guest(page, studio)
    page.get_by_test_id("tutorial-skip").click()
    page.get_by_test_id("new-project-name").fill("Harbour Lights")
    page.get_by_test_id("new-project-create").click()
    expect(page.locator(CARD).filter(has_text="Harbour Lights")).to_be_visible()
    project_id = open_project(page, "Harbour Lights")
    token = page.evaluate("localStorage.getItem('studio.token')")
    auth = {"Authorization": f"Bearer {token}"}
    image = {"name": "harbour.png", "mimeType": "image/png"}
    asset = page.request.post(f"{studio.url}/api/projects/{project_id}/assets", headers=auth,
                              multipart={"file": {**image, "buffer": png((10, 30, 80))}}).json()  # fmt: skip
    edit_from_another_tool(studio, project_id, token, ["canvases", "main", "nodes", "harbour-gen"],
                           {"type": "image.diffusion", "x": 80, "y": 60, "params": {"init_image": asset["id"]}})  # fmt: skip
    node = page.locator(f'{NODE}[data-id="harbour-gen"]')
    expect(node).to_be_visible()

    def replace(colour: tuple[int, int, int]) -> None:
        r = page.request.put(f"{studio.url}/api/projects/{project_id}/assets/{asset['id']}/file", headers=auth,
                             multipart={"file": {**image, "buffer": png(colour)}})  # fmt: skip
        assert r.status == 200, r.text()

    # When the image is replaced, the notice comes; "Keep as it is" takes the notice away too
    replace((200, 160, 40))
    notices = page.get_by_test_id("notice")
    expect(notices).to_have_text(re.compile(r"out of date: .* replaced harbour\.png"))
    notices.get_by_test_id("notice-show").click()
    page.get_by_test_id("stale-clear").click()
    expect(node.get_by_test_id("node-stale")).to_have_count(0)
    expect(notices).to_have_count(0)

    # Replaced again, then cleared somewhere else (as a new take of the node does on the server):
    # the notice comes back, and goes without anyone here dismissing it
    replace((90, 200, 120))
    expect(notices).to_have_count(1)
    expect(node.get_by_test_id("node-stale")).to_have_count(1)
    change_from_another_tool(
        studio, project_id, token,
        lambda doc: doc.get("canvases", type=Map)["main"]["nodes"]["harbour-gen"].pop("stale"),
    )  # fmt: skip
    expect(node.get_by_test_id("node-stale")).to_have_count(0)
    expect(notices).to_have_count(0)
    # The node itself is untouched
    expect(node).to_be_visible()
