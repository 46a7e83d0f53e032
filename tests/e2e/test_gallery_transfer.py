"""The gallery's new-project templates and its export and import: each template previews its story
arc when pointed at or focused, and choosing one is a click or Enter; a project exported from its
card's selection downloads as a file that "Import a project" takes back as a new project; a file
that is not an export is refused in words."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import LiveServer, git
from tests.e2e.studio_helpers import CARD, screenshot, start_as_guest

pytestmark = pytest.mark.e2e
PAGE_OPTIONS = {"bypass_csp": False, "accept_downloads": True}


def import_file(page: Page, path: Path) -> None:
    """What a person does: press "Import a project" and pick the file."""
    with page.expect_file_chooser() as chooser:
        page.get_by_test_id("import-project").click()
    chooser.value.set_files(str(path))


def test_an_exported_project_imports_back_as_a_new_one(
    page: Page, studio: LiveServer, tmp_path: Path
) -> None:
    start_as_guest(page, studio)
    page.get_by_test_id("tutorial-skip").click()
    page.get_by_test_id("new-project-name").fill("Lantern Festival")
    page.get_by_test_id("new-project-template").select_option("heros-journey")
    page.get_by_test_id("new-project-create").click()
    card = page.locator(CARD).filter(has_text="Lantern Festival")
    expect(card).to_have_count(1)

    # Export it: the download is one file, named after the project (a zip: history and media)
    card.get_by_test_id("select-project").check()
    with page.expect_download() as download:
        page.get_by_test_id("bulk-export").click()
    assert download.value.suggested_filename == "Lantern Festival.zip"
    exported = tmp_path / download.value.suggested_filename
    download.value.save_as(exported)
    expect(page.get_by_test_id("bulk-message")).to_contain_text("Exported “Lantern Festival”")

    # Import it: a second project with the same name and template, and its own id
    import_file(page, exported)
    expect(page.get_by_test_id("bulk-message")).to_contain_text("Imported “Lantern Festival”")
    expect(card).to_have_count(2)
    token = page.evaluate("localStorage.getItem('studio.token')")
    listed = page.request.get(
        f"{studio.url}/api/projects", headers={"Authorization": f"Bearer {token}"}
    ).json()
    twins = [p for p in listed["items"] if p["name"] == "Lantern Festival"]
    assert len({p["id"] for p in twins}) == 2
    assert {p["template"] for p in twins} == {"heros-journey"}
    screenshot(page, "gallery-imported-desktop")

    # A file that is not an export is refused in words, and nothing is added
    junk = tmp_path / "holiday.zip"
    junk.write_bytes(b"this is not a zip at all")
    import_file(page, junk)
    expect(page.get_by_role("alert").filter(has_text="neither a git bundle nor a zip")).to_be_visible()
    expect(card).to_have_count(2)


def test_each_template_previews_its_arc_on_hover_and_focus(page: Page, studio: LiveServer) -> None:
    start_as_guest(page, studio)
    page.get_by_test_id("tutorial-skip").click()
    chips = page.get_by_test_id("template-chip")
    arc = page.get_by_test_id("template-arc")
    expect(arc).to_have_count(0)

    # Pointing at a template shows its arc without choosing it
    chips.filter(has_text="Save the Cat!").hover()
    expect(arc).to_contain_text("Act One Thesis 23%")
    expect(page.get_by_test_id("new-project-template")).to_have_value("blank")
    chips.filter(has_text="Five-Act Drama").hover()
    expect(arc).to_contain_text("Act II Rising Action 30%")
    page.mouse.move(5, 5)
    expect(arc).to_have_count(0)

    # From the keyboard: focus moves the preview along; Enter chooses
    chips.filter(has_text="Hero's Journey").focus()
    expect(arc).to_contain_text("Act II Initiation 50%")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("new-project-template")).to_have_value("heros-journey")
    expect(chips.filter(has_text="Hero's Journey")).to_have_attribute("aria-pressed", "true")
    screenshot(page, "template-preview-desktop")


def test_several_projects_export_as_one_file_that_imports_back_whole(
    page: Page, studio: LiveServer, tmp_path: Path
) -> None:
    start_as_guest(page, studio)
    page.get_by_test_id("tutorial-skip").click()
    for name, template in (("Night Ferry", "three-act"), ("Glass Orchard", "save-the-cat")):
        page.get_by_test_id("new-project-name").fill(name)
        page.get_by_test_id("new-project-template").select_option(template)
        page.get_by_test_id("new-project-create").click()
        expect(page.locator(CARD).filter(has_text=name)).to_have_count(1)

    # Both selected, one Export: one file
    for name in ("Night Ferry", "Glass Orchard"):
        page.locator(CARD).filter(has_text=name).get_by_test_id("select-project").check()
    with page.expect_download() as download:
        page.get_by_test_id("bulk-export").click()
    exported = tmp_path / download.value.suggested_filename
    download.value.save_as(exported)
    assert exported.suffix == ".zip"
    expect(page.get_by_test_id("bulk-message")).to_contain_text("Exported 2 projects as one file")

    # Import takes the file back as it is: both projects come back, each a repository with its history
    import_file(page, exported)
    expect(page.get_by_test_id("bulk-message")).to_contain_text("Imported 2 projects")
    for name in ("Night Ferry", "Glass Orchard"):
        expect(page.locator(CARD).filter(has_text=name)).to_have_count(2)
    token = page.evaluate("localStorage.getItem('studio.token')")
    listed = page.request.get(
        f"{studio.url}/api/projects", headers={"Authorization": f"Bearer {token}"}
    ).json()
    ferries = [p for p in listed["items"] if p["name"] == "Night Ferry"]
    assert len({p["id"] for p in ferries}) == 2
    original, copy = sorted(ferries, key=lambda p: p["created_at"])
    history = git(studio.workspace / original["path"], "log", "--format=%H").split()
    assert git(studio.workspace / copy["path"], "log", "--format=%H").split()[-len(history) :] == history

    # The same file damaged on the way: refused in words, nothing added
    damaged = tmp_path / "damaged.zip"
    data = exported.read_bytes()
    damaged.write_bytes(data[: len(data) // 2])
    import_file(page, damaged)
    expect(page.get_by_role("alert").filter(has_text="not a zip archive")).to_be_visible()
    for name in ("Night Ferry", "Glass Orchard"):
        expect(page.locator(CARD).filter(has_text=name)).to_have_count(2)
    screenshot(page, "gallery-bulk-imported-desktop")
