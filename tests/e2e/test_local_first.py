"""The local-first data layer as a person meets it: projects open from this browser's own copy,
edits made offline survive a reload and reach the server's Git repository when the network is
back, projects created offline are created for real (same id), two browsers see each other."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.conftest import LiveServer
from tests.e2e.studio_helpers import (
    CARD,
    DESKTOP,
    EDGE,
    NODE,
    add_node,
    expect_sync,
    node_ids,
    open_project,
    project_dir,
    start_as_guest,
    sw_controls,
    wait_for_commit,
)

pytestmark = pytest.mark.e2e
SEED_SAMPLES = True  # the studio gives each new person the sample projects


def test_a_sample_project_opens_with_its_canvas_and_is_synced(context: Any, studio: LiveServer) -> None:
    page = context.new_page()
    start_as_guest(page, studio)
    project_id = open_project(page, "Low Tide")

    # The sample's eight nodes and four connections are on the canvas, and the project is synced
    expect(page.locator(NODE)).to_have_count(8)
    expect(page.locator(EDGE)).to_have_count(4)
    expect_sync(page, "synced", 0)
    expect(page.get_by_test_id("sync-state")).to_have_text("Synced")

    # And the copy lives in this browser's IndexedDB under the project's id
    names = page.evaluate("indexedDB.databases().then(dbs => dbs.map(d => d.name))")
    assert f"studio-project-{project_id}" in names


def test_offline_edits_survive_a_reload_and_reach_the_repository(context: Any, studio: LiveServer) -> None:
    page = context.new_page()
    start_as_guest(page, studio)
    project_id = open_project(page, "Low Tide")
    expect(page.locator(NODE)).to_have_count(8)
    expect_sync(page, "synced")
    sw_controls(page)
    expect(page.locator(NODE)).to_have_count(8)
    folder = project_dir(studio, project_id)

    # Given the network is gone
    context.set_offline(True)
    expect(page.get_by_test_id("network-status")).to_contain_text("Offline")

    # When they add a node, it is there at once, and the project says one change is pending
    first = add_node(page, "note")
    expect_sync(page, "offline", 1)
    expect(page.get_by_test_id("sync-state")).to_have_text("Offline, 1 change pending")

    # When they reload while still offline, the service worker serves the app, IndexedDB the project
    response = page.reload()
    assert response is None or response.from_service_worker
    expect(page.locator(NODE)).to_have_count(9)
    assert first in node_ids(page)
    expect_sync(page, "offline", 1)

    # And a second edit while offline adds to the pending count
    second = add_node(page, "prompt")
    expect_sync(page, "offline", 2)

    # And dragging that node around (a position written at every step) is still that one change
    box = page.locator(f'{NODE}[data-id="{second}"]').bounding_box()
    assert box is not None
    moved_from = page.locator(f'{NODE}[data-id="{second}"]').get_attribute("style")
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 12)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 80, box["y"] + 60, steps=15)
    page.mouse.up()
    assert page.locator(f'{NODE}[data-id="{second}"]').get_attribute("style") != moved_from
    expect_sync(page, "offline", 2)
    expect(page.get_by_test_id("sync-state")).to_have_text("Offline, 2 changes pending")

    # When the network comes back, the edits go out without any action, and the server confirms them
    context.set_offline(False)
    expect_sync(page, "synced", 0, timeout=20_000)

    # Then the server's Git repository has both new nodes in a commit
    canvas = wait_for_commit(folder, lambda c: {first, second} <= set(c["nodes"]))
    assert canvas["nodes"][first]["type"] == "note"
    assert canvas["nodes"][second]["type"] == "prompt"
    assert len(canvas["nodes"]) == 10


def test_the_gallery_opens_offline_and_a_project_created_offline_is_created_later(
    context: Any, studio: LiveServer
) -> None:
    page = context.new_page()
    start_as_guest(page, studio)
    expect(page.locator(CARD)).to_have_count(2)
    sw_controls(page)
    token = page.evaluate("localStorage.getItem('studio.token')")

    previews = page.locator(f"{CARD} img[alt^='Preview of']")
    expect(previews).to_have_count(2)

    # Given they are offline and reload: the gallery shows the projects kept on this device,
    # with the previews it saw last (not the browser's short-lived HTTP cache: emptied here)
    context.new_cdp_session(page).send("Network.clearBrowserCache")
    context.set_offline(True)
    page.reload()
    expect(page.locator(CARD)).to_have_count(2)
    expect(page.get_by_role("alert").first).to_contain_text("Could not reach the studio server")
    expect(previews).to_have_count(2)
    assert all(previews.nth(i).evaluate("img => img.complete && img.naturalWidth > 0") for i in range(2))

    # And local search still narrows the list
    page.get_by_test_id("project-search").fill("tide")
    expect(page.locator(CARD)).to_have_count(1)
    page.get_by_test_id("project-search").fill("")
    expect(page.locator(CARD)).to_have_count(2)

    # When they create a project offline, it is in the gallery, marked as not yet on the server
    page.get_by_test_id("new-project-name").fill("Written On A Train")
    page.get_by_test_id("new-project-create").click()
    card = page.locator(CARD).filter(has_text="Written On A Train")
    expect(card).to_have_count(1)
    expect(card).to_contain_text("Created offline")
    pending = page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('studio.pending-projects'))")
    stored = json.loads(page.evaluate(f"localStorage.getItem({json.dumps(pending[0])})"))
    local_id = stored[0]["id"]

    # When the network is back, the project is created on the server with the id made offline
    context.set_offline(False)
    expect(card).not_to_contain_text("Created offline", timeout=20_000)
    r = httpx.get(f"{studio.url}/api/projects/{local_id}", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Written On A Train"
    assert project_dir(studio, local_id).name == "Written_On_A_Train"


def test_the_gallery_shows_this_devices_list_while_the_server_is_slow_to_answer(
    context: Any, studio: LiveServer
) -> None:
    page = context.new_page()
    start_as_guest(page, studio)
    expect(page.locator(CARD)).to_have_count(2)
    held: list[Any] = []  # the list requests, answered only when the test says so

    def hold(route: Any) -> None:
        held.append(route)

    # Given the server takes its time with the project list
    page.route("**/api/projects?*", hold)
    page.reload()
    # Then the projects this browser saw last are there at once, before the server has answered
    expect(page.locator(CARD)).to_have_count(2)
    expect(page.get_by_test_id("new-project-name")).to_be_enabled()
    assert held, "the gallery did ask the server"
    # And when the server answers with what it has now, that is the list shown
    for route in held:
        response = route.fetch()
        body = response.json()
        body["items"] = body["items"][:1]
        body["total"] = 1
        route.fulfill(response=response, json=body)
    page.unroute("**/api/projects?*")
    expect(page.locator(CARD)).to_have_count(1)


def test_two_browsers_see_each_others_edits(browser: Any, studio: LiveServer) -> None:
    alice_ctx = browser.new_context(viewport=DESKTOP)
    bob_ctx = browser.new_context(viewport=DESKTOP)
    try:
        alice = alice_ctx.new_page()
        start_as_guest(alice, studio)
        project_id = open_project(alice, "Lost Property")
        expect(alice.locator(NODE)).to_have_count(9)
        # Bob is the same person on a second device: the same token, his own browser storage
        token = alice.evaluate("localStorage.getItem('studio.token')")
        user = alice.evaluate("localStorage.getItem('studio.user')")
        bob = bob_ctx.new_page()
        bob.add_init_script(
            f"localStorage.setItem('studio.token', {json.dumps(token)});"
            f"localStorage.setItem('studio.user', {json.dumps(user)});"
        )
        bob.goto(f"{studio.url}/projects/{project_id}")
        expect(bob.locator(NODE)).to_have_count(9)

        # When Alice adds a node, Bob sees it; when Bob deletes it, Alice sees it go
        added = add_node(alice, "note")
        expect(bob.locator(f'{NODE}[data-id="{added}"]')).to_have_count(1)
        bob.locator(f'{NODE}[data-id="{added}"]').click()
        bob.get_by_test_id("delete-selected").click()
        expect(alice.locator(f'{NODE}[data-id="{added}"]')).to_have_count(0)
        expect(alice.locator(NODE)).to_have_count(9)
    finally:
        alice_ctx.close()
        bob_ctx.close()
