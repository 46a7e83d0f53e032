"""The studio workspace: the tutorial from a first visit to a first generation, the three panels
(collapse, resize, remembered), the phone layout, shortcuts, the inspector, the progress area,
the gallery's bulk actions, and accessibility (axe-core) of each main screen, with screenshots
of each at desktop and phone sizes under tests/artifacts/."""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import LiveServer
from tests.e2e.studio_helpers import (
    CARD,
    EDGE,
    NODE,
    PHONE,
    add_node,
    axe_violations,
    expect_sync,
    open_project,
    project_dir,
    screenshot,
    start_as_guest,
    wait_for_commit,
)

pytestmark = pytest.mark.e2e
SEED_SAMPLES = True  # the studio gives each new person the sample projects


def connect(page: Page, source: str, target: str, target_handle: str) -> None:
    """Drag from the source node's output dot to the target node's input dot."""
    out = page.locator(f'{NODE}[data-id="{source}"] .svelte-flow__handle.source')
    into = page.locator(f'{NODE}[data-id="{target}"] .svelte-flow__handle[data-handleid="{target_handle}"]')
    out.drag_to(into)


def drag_by(page: Page, node_id: str, dx: float, dy: float) -> None:
    """Drag a node by its body, the way a hand does: press, move in steps, release."""
    box = page.locator(f'{NODE}[data-id="{node_id}"]').bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + 12
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx, y + dy, steps=12)
    page.mouse.up()


def select_node(page: Page, node_id: str) -> None:
    page.locator(f'{NODE}[data-id="{node_id}"]').click()
    expect(page.get_by_test_id("inspector")).not_to_contain_text("Select a node")


def test_the_tutorial_takes_a_newcomer_to_a_first_generation_and_git_has_it(
    page: Page, studio: LiveServer
) -> None:
    started = time.monotonic()
    start_as_guest(page, studio)
    tutorial = page.get_by_test_id("tutorial")

    # Step 1: create a project from a template; focusing the template shows its story arc
    expect(tutorial).to_contain_text("Step 1 of 6")
    page.get_by_test_id("new-project-name").fill("Tide Tables")
    page.get_by_test_id("new-project-template").select_option("three-act")
    page.get_by_test_id("new-project-template").focus()
    expect(page.get_by_test_id("template-arc")).to_contain_text("Act I Setup 25%")
    page.get_by_test_id("new-project-create").click()

    # Step 2: open it
    expect(tutorial).to_contain_text("Step 2 of 6")
    project_id = open_project(page, "Tide Tables")
    expect(tutorial).to_contain_text("Step 3 of 6")
    expect_sync(page, "synced")

    # Step 3: add a prompt node and write the prompt
    prompt = add_node(page, "prompt")
    page.get_by_test_id("param-text").fill("A lighthouse keeper reading tide tables by lamplight")
    expect(tutorial).to_contain_text("Step 4 of 6")

    # Step 4: add an image generator and connect the prompt to it
    generator = add_node(page, "image.diffusion")
    drag_by(page, generator, 230, -150)
    page.get_by_role("button", name="Fit View").click()
    connect(page, prompt, generator, "prompt")
    expect(page.locator(EDGE)).to_have_count(1)
    expect(tutorial).to_contain_text("Step 5 of 6")

    # Step 5: start a generation; the progress area shows the task, and why it failed, in words
    select_node(page, generator)
    page.get_by_test_id("generate").click()
    expect(tutorial).to_contain_text("Step 6 of 6")
    task = page.get_by_test_id("task").first
    expect(task).to_be_visible()
    expect(task).to_have_attribute("data-state", "failed", timeout=15_000)
    expect(task.get_by_test_id("task-error")).to_contain_text("No generation models were found")
    page.get_by_test_id("tutorial-finish").click()
    expect(tutorial).to_have_count(0)
    elapsed = time.monotonic() - started
    assert elapsed < 120, f"the first creation took {elapsed:.0f} s"

    # And the server's Git repository has both nodes and the connection
    folder = project_dir(studio, project_id)
    canvas = wait_for_commit(
        folder, lambda c: {prompt, generator} <= set(c["nodes"]) and len(c["edges"]) == 1
    )
    assert canvas["nodes"][prompt]["params"]["text"] == "A lighthouse keeper reading tide tables by lamplight"
    (edge,) = canvas["edges"].values()
    assert edge == {"source": prompt, "sourceHandle": "out", "target": generator, "targetHandle": "prompt"}


def test_the_tutorial_can_be_skipped_and_resumed(page: Page, studio: LiveServer) -> None:
    start_as_guest(page, studio)
    page.get_by_test_id("tutorial-skip").click()
    expect(page.get_by_test_id("tutorial")).to_have_count(0)
    page.reload()
    expect(page.get_by_test_id("tutorial")).to_have_count(0)
    page.get_by_test_id("tutorial-resume").click()
    expect(page.get_by_test_id("tutorial")).to_contain_text("Step 1 of 6")


def test_inspector_edits_reach_the_repository_and_deleting_a_node_too(page: Page, studio: LiveServer) -> None:
    start_as_guest(page, studio)
    page.get_by_test_id("tutorial-skip").click()
    project_id = open_project(page, "Low Tide")
    expect(page.locator(NODE)).to_have_count(8)
    folder = project_dir(studio, project_id)

    # When they change the steps of a generator in the inspector
    select_node(page, "slip-gen")
    page.get_by_test_id("param-steps").fill("12")
    page.get_by_test_id("param-steps").press("Enter")
    # A value out of range is refused with the reason, and nothing is written
    page.get_by_test_id("param-guidance").fill("99")
    page.get_by_test_id("param-guidance").press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("Guidance must be between 0 and 30")

    # And delete a node with the Delete key
    page.locator(f'{NODE}[data-id="brief"]').click()
    page.keyboard.press("Delete")
    expect(page.locator(NODE)).to_have_count(7)

    canvas = wait_for_commit(
        folder, lambda c: c["nodes"]["slip-gen"]["params"]["steps"] == 12 and "brief" not in c["nodes"]
    )
    assert canvas["nodes"]["slip-gen"]["params"]["guidance"] == 7.5


def test_panels_collapse_resize_and_the_layout_is_remembered(page: Page, studio: LiveServer) -> None:
    start_as_guest(page, studio)
    page.get_by_test_id("tutorial-skip").click()
    open_project(page, "Low Tide")
    expect(page.get_by_test_id("panel-left")).to_be_visible()
    expect(page.get_by_test_id("project-browser")).to_contain_text("Canvases")
    expect(page.get_by_test_id("project-browser")).to_contain_text("Act I")
    screenshot(page, "studio-desktop")
    assert axe_violations(page) == []

    # Collapse the left panel with its button and the right one with "]"
    page.get_by_test_id("toggle-left").click()
    expect(page.get_by_test_id("panel-left")).to_have_count(0)
    page.locator("body").press("]")
    expect(page.get_by_test_id("panel-right")).to_have_count(0)
    page.locator("body").press("]")
    expect(page.get_by_test_id("panel-right")).to_be_visible()

    # Resize the right panel from the keyboard on its separator
    separator = page.get_by_role("separator", name="Resize the right panel")
    before = int(separator.get_attribute("aria-valuenow") or 0)
    separator.focus()
    for _ in range(3):
        separator.press("ArrowLeft")
    expect(separator).to_have_attribute("aria-valuenow", str(before + 30))
    width = page.get_by_test_id("panel-right").evaluate("e => e.getBoundingClientRect().width")
    assert abs(width - (before + 30)) <= 1

    # After a reload the layout is as they left it
    page.reload()
    expect(page.locator(NODE)).to_have_count(8)
    expect(page.get_by_test_id("panel-left")).to_have_count(0)
    expect(page.get_by_role("separator", name="Resize the right panel")).to_have_attribute(
        "aria-valuenow", str(before + 30)
    )


def test_shortcuts_have_a_help_overlay_and_work_from_the_keyboard(page: Page, studio: LiveServer) -> None:
    start_as_guest(page, studio)
    page.get_by_test_id("tutorial-skip").click()
    open_project(page, "Lost Property")
    expect(page.locator(NODE)).to_have_count(9)

    page.locator("body").press("?")
    help_dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(help_dialog).to_be_visible()
    expect(help_dialog).to_contain_text("Add a node")
    assert axe_violations(page) == []
    page.keyboard.press("Escape")
    expect(help_dialog).to_be_hidden()

    page.locator("body").press("n")
    expect(page.locator(NODE)).to_have_count(10)

    # Settings: storage used on this device and whether the browser keeps it
    page.locator("body").press(",")
    settings = page.get_by_role("dialog", name="Settings")
    expect(settings.get_by_test_id("storage-usage")).to_contain_text("used of")
    expect(settings.get_by_test_id("storage-persisted")).to_be_visible()
    screenshot(page, "settings-desktop")


def test_on_a_phone_one_panel_shows_at_a_time_with_a_bottom_tab_bar(browser: Any, studio: LiveServer) -> None:
    context = browser.new_context(viewport=PHONE, bypass_csp=True, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        start_as_guest(page, studio)
        screenshot(page, "gallery-phone")
        page.get_by_test_id("tutorial-skip").click()
        open_project(page, "Low Tide")
        expect(page.get_by_test_id("panel-centre")).to_be_visible()
        expect(page.get_by_test_id("panel-left")).to_have_count(0)
        expect(page.get_by_test_id("panel-right")).to_have_count(0)
        screenshot(page, "studio-phone-canvas")

        page.get_by_test_id("phone-tab-browser").click()
        expect(page.get_by_test_id("panel-left")).to_be_visible()
        expect(page.get_by_test_id("panel-centre")).to_have_count(0)
        screenshot(page, "studio-phone-browser")

        page.get_by_test_id("phone-tab-inspector").click()
        expect(page.get_by_test_id("inspector")).to_be_visible()
        page.get_by_test_id("phone-tab-tasks").click()
        expect(page.get_by_test_id("task-list")).to_be_visible()
        expect(page.get_by_test_id("inspector")).to_have_count(0)
        screenshot(page, "studio-phone-progress")
        assert axe_violations(page) == []
    finally:
        context.close()


def test_bulk_archive_and_delete_with_confirmation_and_undo(page: Page, studio: LiveServer) -> None:
    start_as_guest(page, studio)
    page.get_by_test_id("tutorial-skip").click()
    expect(page.locator(CARD)).to_have_count(2)
    people = page.locator(CARD).first.get_by_test_id("collaborators")
    expect(people).to_be_visible()
    expect(people).to_have_text("People: Only you")  # the guest is the only member of its samples
    screenshot(page, "gallery-desktop")
    assert axe_violations(page) == []

    # Archive one: it leaves the active list and shows under "Archived projects"
    page.locator(CARD).filter(has_text="Low Tide").get_by_test_id("select-project").check()
    page.get_by_test_id("bulk-archive").click()
    expect(page.locator(CARD)).to_have_count(1)
    page.get_by_test_id("filter-archived").select_option("true")
    expect(page.locator(CARD)).to_have_count(1)
    expect(page.locator(CARD)).to_contain_text("Low Tide")
    page.get_by_test_id("filter-archived").select_option("false")
    expect(page.locator(CARD)).to_have_count(1)

    # Delete the other: a confirmation first, then it is gone, and Undo brings it back from the trash
    page.locator(CARD).filter(has_text="Lost Property").get_by_test_id("select-project").check()
    page.get_by_test_id("bulk-delete").click()
    confirm = page.get_by_role("dialog", name="Delete 1 project?")
    expect(confirm).to_contain_text("Lost Property")
    confirm.get_by_test_id("confirm-delete-yes").click()
    expect(page.locator(CARD)).to_have_count(0)
    expect(page.get_by_test_id("bulk-message")).to_contain_text("Moved 1 project to the trash")
    page.get_by_test_id("undo-delete").click()
    expect(page.locator(CARD)).to_have_count(1)
    expect(page.locator(CARD)).to_contain_text("Lost Property")


def test_nodes_connect_and_disconnect_without_a_mouse(page: Page, studio: LiveServer) -> None:
    start_as_guest(page, studio)
    page.get_by_test_id("tutorial-skip").click()
    project_id = open_project(page, "Low Tide")
    expect(page.locator(EDGE)).to_have_count(4)
    folder = project_dir(studio, project_id)

    # Choose the second generator (slip-gen; the tree lists nodes by id) from the keyboard
    item = page.get_by_test_id("project-browser").get_by_role("button", name="Image generator").nth(1)
    item.focus()
    page.keyboard.press("Enter")
    inspector = page.get_by_test_id("inspector")
    expect(inspector).to_contain_text("Image generator")
    expect(inspector.get_by_role("button", name="Disconnect prompt from Prompt: An old man")).to_be_visible()

    # Disconnect its prompt, then wire the other prompt in, all with keys
    inspector.get_by_role("button", name="Disconnect prompt from Prompt: An old man").press("Enter")
    expect(page.locator(EDGE)).to_have_count(3)
    inspector.get_by_test_id("connect-prompt").select_option("causeway-prompt|out")
    expect(page.locator(EDGE)).to_have_count(4)
    canvas = wait_for_commit(
        folder,
        lambda c: any(
            e["source"] == "causeway-prompt" and e["target"] == "slip-gen" for e in c["edges"].values()
        ),
    )
    assert not any(
        e["source"] == "slip-prompt" and e["target"] == "slip-gen" for e in canvas["edges"].values()
    )
