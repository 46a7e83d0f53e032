"""A project shared with someone as a viewer opens for them as it is, with nothing to change:
no adding, moving or deleting nodes, no editing parameters, no generating, no uploads."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import LiveServer
from tests.e2e.studio_helpers import CARD, NODE, open_project

pytestmark = pytest.mark.e2e


def register(studio: LiveServer, name: str) -> dict[str, str]:
    body = {"email": f"{name.lower()}@example.org", "password": "a long enough secret", "name": name}
    r = httpx.post(f"{studio.url}/api/auth/register", json=body)
    assert r.status_code == 201, r.text
    return {"token": r.json()["token"], "email": body["email"]}


def test_a_viewer_sees_the_project_and_has_nothing_to_change(page: Page, studio: LiveServer) -> None:
    owner, viewer = register(studio, "Olga"), register(studio, "Vic")
    h = {"Authorization": f"Bearer {owner['token']}"}
    pid = httpx.post(f"{studio.url}/api/projects", headers=h, json={"name": "Harbour Lights"}).json()["id"]
    r = httpx.post(f"{studio.url}/api/projects/{pid}/members", headers=h,
                   json={"email": viewer["email"], "role": "viewer"})  # fmt: skip
    assert r.status_code == 200, r.text

    # Given Vic, signed in (before any page script runs: a first visit would start a guest),
    # opens the project shared with them to view
    page.add_init_script(
        "if (!localStorage.getItem('studio.token')) {"
        f" localStorage.setItem('studio.token', {viewer['token']!r}); localStorage.setItem('studio.visited', '1') }}"
    )
    page.goto(studio.url)
    expect(page.locator(CARD)).to_have_count(1)
    open_project(page, "Harbour Lights")

    # Then the studio says it is view only, and offers nothing that changes the project
    expect(page.get_by_test_id("view-only")).to_have_text("View only")
    expect(page.get_by_test_id("scene-view")).to_be_visible()
    expect(page.get_by_test_id("add-node")).to_have_count(0)
    expect(page.get_by_test_id("asset-upload")).to_have_count(0)
    nodes = page.locator(NODE)
    state = httpx.get(f"{studio.url}/api/projects/{pid}/state", headers=h).json()
    before = sum(len(canvas["nodes"]) for canvas in state["canvases"].values())
    expect(nodes).to_have_count(before)  # the canvas is all there
    page.keyboard.press("n")  # the add-node shortcut does nothing either
    page.wait_for_timeout(300)
    expect(nodes).to_have_count(before)

    # And an owner sees the same project with every tool
    page.evaluate("t => localStorage.setItem('studio.token', t)", owner["token"])
    page.goto(f"{studio.url}/projects/{pid}")
    expect(page.get_by_test_id("project-name")).to_have_text("Harbour Lights")
    expect(page.get_by_test_id("add-node")).to_be_visible()
    expect(page.get_by_test_id("asset-upload")).to_be_visible()
    expect(page.get_by_test_id("view-only")).to_have_count(0)
    page.keyboard.press("n")  # where the same key adds a node
    expect(nodes).to_have_count(before + 1)


def test_an_editor_made_viewer_while_the_studio_is_open_turns_view_only_and_back(
    page: Page, studio: LiveServer
) -> None:
    owner, member = register(studio, "Oona"), register(studio, "Milo")
    h = {"Authorization": f"Bearer {owner['token']}"}
    pid = httpx.post(f"{studio.url}/api/projects", headers=h, json={"name": "Night Ferry"}).json()["id"]

    def set_role(role: str) -> None:
        r = httpx.post(f"{studio.url}/api/projects/{pid}/members", headers=h,
                       json={"email": member["email"], "role": role})  # fmt: skip
        assert r.status_code == 200, r.text

    set_role("editor")
    page.add_init_script(
        "if (!localStorage.getItem('studio.token')) {"
        f" localStorage.setItem('studio.token', {member['token']!r}); localStorage.setItem('studio.visited', '1') }}"
    )
    page.goto(f"{studio.url}/projects/{pid}")
    expect(page.get_by_test_id("project-name")).to_have_text("Night Ferry")
    expect(page.get_by_test_id("add-node")).to_be_visible()

    # When the owner makes Milo a viewer, Milo's open studio turns view only, without a reload
    set_role("viewer")
    expect(page.get_by_test_id("view-only")).to_have_text("View only")
    expect(page.get_by_test_id("add-node")).to_have_count(0)
    # and when the owner makes him an editor again, he gets his tools back
    set_role("editor")
    expect(page.get_by_test_id("view-only")).to_have_count(0)
    expect(page.get_by_test_id("add-node")).to_be_visible()
    # The studio kept syncing all along (the socket reconnected by itself each time)
    expect(page.get_by_test_id("sync-state")).to_have_attribute("data-state", "synced")
