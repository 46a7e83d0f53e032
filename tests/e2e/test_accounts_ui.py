"""Accounts in the browser: a person who signed up on one device signs in on another (a fresh
browser context) and finds their projects; wrong passwords are explained in words; signing out
and in again works from the keyboard alone; signing in from a guest session brings the guest's
projects along; signing out never loses unsaved changes without asking and leaves nothing of the
account in the browser; the screens pass axe-core."""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import LiveServer
from tests.e2e.studio_helpers import (
    CARD,
    DESKTOP,
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

EMAIL = "ines@example.org"
PASSWORD = "a long enough secret"


def fresh_page(browser: Any) -> Page:
    # bypass_csp: axe-core is injected as an inline script, which the studio's CSP rightly refuses.
    return browser.new_context(viewport=DESKTOP, bypass_csp=True).new_page()


def card_names(page: Page) -> list[str]:
    return page.locator(CARD).get_by_test_id("open-project").all_inner_texts()


def test_an_account_made_in_one_browser_signs_in_from_another_and_finds_its_projects(
    browser: Any, studio: LiveServer
) -> None:
    # Given a person who started as a guest, made a project and signed up (keeping it)
    first = fresh_page(browser)
    start_as_guest(first, studio)
    first.get_by_test_id("tutorial-skip").click()
    first.get_by_test_id("new-project-name").fill("Harbour Lights")
    first.get_by_test_id("new-project-create").click()
    expect(first.locator(CARD).filter(has_text="Harbour Lights")).to_be_visible()
    first.get_by_test_id("open-settings").click()
    form = first.get_by_test_id("register-form")
    form.get_by_label("Name").fill("Inès")
    form.get_by_label("Email").fill(EMAIL)
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_role("button", name="Sign up and keep my projects").click()
    expect(first.get_by_test_id("account-name")).to_have_text("Signed in as Inès.")
    first.context.close()

    # When they open the studio on another device (a fresh context: it starts as a guest) ...
    page = fresh_page(browser)
    start_as_guest(page, studio)
    page.get_by_test_id("tutorial-skip").click()
    expect(page.locator(CARD)).to_have_count(0)
    page.get_by_test_id("open-signin").click()
    dialog = page.get_by_test_id("signin-dialog")
    expect(dialog.get_by_test_id("signin-email")).to_be_focused()  # the dialog is ready to type in

    # ... a wrong password is refused in words, next to the form, and nothing changes
    page.keyboard.type(EMAIL)
    page.keyboard.press("Tab")
    page.keyboard.type("not my password")
    page.keyboard.press("Enter")
    expect(dialog.get_by_test_id("signin-error")).to_have_text("Wrong email or password.")
    expect(dialog.get_by_test_id("signin-password")).to_have_attribute("aria-invalid", "true")
    assert axe_violations(page) == []
    screenshot(page, "signin-error-desktop")

    # ... and the right one, typed and sent from the keyboard, brings their projects
    dialog.get_by_test_id("signin-password").fill(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("signin-dialog")).to_be_hidden()
    expect(page.get_by_test_id("signed-in-as")).to_contain_text("Inès")
    expect(page.locator(CARD).filter(has_text="Harbour Lights")).to_be_visible()
    assert card_names(page) == ["Harbour Lights"]

    # The session survives a reload
    page.reload()
    expect(page.locator(CARD).filter(has_text="Harbour Lights")).to_be_visible()
    expect(page.get_by_test_id("signed-in-as")).to_contain_text("Inès")

    # A colleague joins the project: its card names them beside "you", from the project list alone
    bob = page.request.post(
        f"{studio.url}/api/auth/register",
        data={"email": "bob@example.org", "password": PASSWORD, "name": "Bob"},
    )
    assert bob.status == 201, bob.text()
    token = page.evaluate("localStorage.getItem('studio.token')")
    me = {"Authorization": f"Bearer {token}"}
    href = page.locator(CARD).get_by_test_id("open-project").get_attribute("href")
    assert href is not None
    project_id = href.rsplit("/", 1)[-1]
    added = page.request.post(
        f"{studio.url}/api/projects/{project_id}/members",
        headers=me,
        data={"email": "bob@example.org", "role": "editor"},
    )
    assert added.ok, added.text()
    members_calls: list[str] = []
    page.on("request", lambda r: members_calls.append(r.url) if r.url.endswith("/members") else None)
    page.reload()
    expect(page.locator(CARD).get_by_test_id("collaborators")).to_have_text("People: You and Bob")
    assert members_calls == []

    # Signing out revokes the token and leaves the start screen, which offers signing in again
    token = page.evaluate("localStorage.getItem('studio.token')")
    page.get_by_test_id("topbar-sign-out").click()
    expect(page.get_by_test_id("guest-start")).to_be_visible()
    assert page.evaluate("localStorage.getItem('studio.token')") is None
    revoked = page.request.get(f"{studio.url}/api/me", headers={"Authorization": f"Bearer {token}"})
    assert revoked.status == 401
    assert axe_violations(page) == []
    screenshot(page, "signed-out-desktop")

    # Keyboard only: Tab to the email field of the start screen's sign-in form, type, Enter
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement?.dataset.testid") == "signin-email":
            break
    else:
        raise AssertionError("the sign-in form cannot be reached with Tab")
    page.keyboard.type(EMAIL)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator(CARD).filter(has_text="Harbour Lights")).to_be_visible()
    page.context.close()


def test_on_a_phone_every_account_control_fits_the_screen(browser: Any, studio: LiveServer) -> None:
    context = browser.new_context(viewport=PHONE, bypass_csp=True)
    page = context.new_page()
    start_as_guest(page, studio)
    page.get_by_test_id("tutorial-skip").click()
    # Nothing runs off the side: the page never scrolls sideways, and "Sign in" is on screen
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    signin = page.get_by_test_id("open-signin")
    expect(signin).to_be_in_viewport()
    signin.click()
    expect(page.get_by_test_id("signin-dialog").get_by_test_id("signin-email")).to_be_focused()
    assert axe_violations(page) == []
    screenshot(page, "signin-phone")

    # Signed in, the name and "Sign out" fit as well, and so does the question about unsaved work
    register(page, studio, "Pia", "pia@example.org")
    page.keyboard.type("pia@example.org")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("signed-in-note")).to_have_text("Signed in as Pia.")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    expect(page.get_by_test_id("topbar-sign-out")).to_be_in_viewport()
    create_project(page, "Pocket Film")
    href = page.locator(CARD).get_by_test_id("open-project").get_attribute("href")
    assert href is not None
    # An unconfirmed change, as a tracker saves it (the desktop test makes real ones offline)
    page.evaluate(
        "id => localStorage.setItem('studio.pending.' + id, JSON.stringify(['meta/name']))",
        href.rsplit("/", 1)[-1],
    )
    page.get_by_test_id("topbar-sign-out").click()
    dialog = page.get_by_test_id("signout-unsaved")
    expect(dialog.get_by_test_id("signout-anyway")).to_be_in_viewport()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert axe_violations(page) == []
    screenshot(page, "sign-out-unsaved-phone")
    context.close()


def register(page: Page, studio: LiveServer, name: str, email: str) -> dict[str, Any]:
    r = page.request.post(
        f"{studio.url}/api/auth/register", data={"email": email, "password": PASSWORD, "name": name}
    )
    assert r.status == 201, r.text()
    return dict(r.json())


def create_project(page: Page, name: str) -> None:
    page.get_by_test_id("new-project-name").fill(name)
    page.get_by_test_id("new-project-create").click()
    expect(page.locator(CARD).filter(has_text=name)).to_be_visible()


def sign_in(page: Page, email: str) -> None:
    page.get_by_test_id("open-signin").click()
    dialog = page.get_by_test_id("signin-dialog")
    dialog.get_by_test_id("signin-email").fill(email)
    dialog.get_by_test_id("signin-password").fill(PASSWORD)
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()


def stored_keys(page: Page) -> list[str]:
    return list(page.evaluate("Object.keys(localStorage)"))


def preview_caches(page: Page) -> list[str]:
    """The caches of project previews this browser keeps (one per person)."""
    names = page.evaluate("caches.keys()")
    return sorted(n for n in names if n.startswith("studio-previews-"))


def project_databases(page: Page) -> list[str]:
    names = page.evaluate("indexedDB.databases().then(dbs => dbs.map(d => d.name))")
    return sorted(n for n in names if n.startswith("studio-project-"))


def test_signing_in_from_a_guest_session_brings_the_guest_s_projects_along(
    browser: Any, studio: LiveServer
) -> None:
    # Given Lea, with an account and a project of her own
    page = fresh_page(browser)
    lea = register(page, studio, "Lea", "lea@example.org")
    made = page.request.post(f"{studio.url}/api/projects", data={"name": "Lea's Reel"},
                             headers={"Authorization": f"Bearer {lea['token']}"})  # fmt: skip
    assert made.status == 201

    # ... who, on a shared computer, started as a guest and made two projects, one of them edited
    start_as_guest(page, studio)
    page.get_by_test_id("tutorial-skip").click()
    guest_id = page.evaluate("JSON.parse(localStorage.getItem('studio.user')).id")
    create_project(page, "Harbour Lights")
    create_project(page, "Night Ferry")
    harbour = open_project(page, "Harbour Lights")
    node = add_node(page, "note")
    expect_sync(page, "synced", 0)
    page.goto(studio.url)

    # When she signs in to her account
    sign_in(page, "lea@example.org")

    # Then she is told what came along, and has all three projects
    expect(page.get_by_test_id("signed-in-note")).to_have_text(
        "Signed in as Lea. 2 projects from your guest session are now in your account."
    )
    expect(page.locator(CARD)).to_have_count(3)
    assert sorted(card_names(page)) == ["Harbour Lights", "Lea's Reel", "Night Ferry"]
    assert axe_violations(page) == []
    screenshot(page, "signed-in-from-guest-desktop")
    # ... nothing on this device is kept under the retired guest any more
    assert [k for k in stored_keys(page) if guest_id in k] == []
    # ... and the guest's copy of "Harbour Lights" opens and syncs as hers, the node in it
    assert open_project(page, "Harbour Lights") == harbour
    expect(page.locator(f'{NODE}[data-id="{node}"]')).to_be_visible()
    expect_sync(page, "synced", 0)
    page.context.close()


def test_signing_out_asks_about_unsaved_changes_and_leaves_nothing_of_the_account(
    browser: Any, studio: LiveServer
) -> None:
    # Given Noor, signed in on a shared computer, with a project open and an edit made offline
    page = fresh_page(browser)
    noor = register(page, studio, "Noor", "noor@example.org")
    start_as_guest(page, studio)
    page.get_by_test_id("tutorial-skip").click()
    sign_in(page, "noor@example.org")
    create_project(page, "Lighthouse")
    project_id = open_project(page, "Lighthouse")
    expect_sync(page, "synced", 0)
    assert f"studio-project-{project_id}" in project_databases(page)
    page.context.set_offline(True)
    first = add_node(page, "note")
    expect_sync(page, "offline", 1)

    # (the gallery kept her project's preview on this device)
    deadline = time.monotonic() + 10
    while not preview_caches(page):
        assert time.monotonic() < deadline, "the gallery kept no preview"
        page.wait_for_timeout(100)
    # When she signs out, she is told what is not saved, and may stay signed in
    page.get_by_test_id("open-settings").click()
    page.get_by_test_id("sign-out").click()
    dialog = page.get_by_test_id("signout-unsaved")
    expect(dialog.get_by_test_id("signout-unsaved-count")).to_have_text(
        "1 change not yet saved to the server in “Lighthouse”."
    )
    assert axe_violations(page) == []
    screenshot(page, "sign-out-unsaved-desktop")
    dialog.get_by_test_id("signout-cancel").click()
    expect(dialog).to_be_hidden()
    expect_sync(page, "offline", 1)

    # When she chooses to wait while offline, the dialog says why it takes long
    page.get_by_test_id("sign-out").click()
    dialog.get_by_test_id("signout-wait").click()
    expect(dialog.get_by_test_id("signout-waiting")).to_have_text(
        "You are offline: the changes are sent when the connection returns."
    )

    # Then, with the network back, the change reaches the server and only then is she signed out
    page.context.set_offline(False)
    expect(page.get_by_test_id("guest-start")).to_be_visible(timeout=20_000)
    wait_for_commit(project_dir(studio, project_id), lambda c: first in c["nodes"])
    assert page.evaluate("localStorage.getItem('studio.token')") is None

    # And nothing of hers is left in this browser: no project copy, no preview, no key naming her
    # or the project
    assert project_databases(page) == []
    assert preview_caches(page) == []
    assert [k for k in stored_keys(page) if noor["user"]["id"] in k or project_id in k] == []
    assert "Lighthouse" not in page.evaluate("JSON.stringify(localStorage)")

    # When she signs in again, edits offline and signs out anyway, the change is discarded with the rest
    page.get_by_test_id("signin-email").fill("noor@example.org")
    page.get_by_test_id("signin-password").fill(PASSWORD)
    page.keyboard.press("Enter")
    open_project(page, "Lighthouse")
    expect(page.locator(f'{NODE}[data-id="{first}"]')).to_be_visible()
    expect_sync(page, "synced", 0)
    page.context.set_offline(True)
    add_node(page, "prompt")
    expect_sync(page, "offline", 1)
    page.goto(studio.url)  # the gallery, served by the service worker
    other_tab = page.context.new_page()
    other_tab.goto(f"{studio.url}/projects/{project_id}")
    expect(other_tab.get_by_test_id("project-name")).to_have_text("Lighthouse")
    page.get_by_test_id("topbar-sign-out").click()
    expect(dialog.get_by_test_id("signout-unsaved-count")).to_contain_text("1 change not yet saved")
    dialog.get_by_test_id("signout-anyway").click()
    expect(page.get_by_test_id("guest-start")).to_be_visible()
    expect(other_tab.get_by_test_id("guest-start")).to_be_visible()  # signed out in every tab
    assert project_databases(page) == []
    assert [k for k in stored_keys(page) if noor["user"]["id"] in k or project_id in k] == []
    other_tab.close()

    # And the next person at this computer finds no trace of her in the gallery, online or not
    page.context.set_offline(False)
    page.get_by_test_id("guest-start").click()
    expect(page.get_by_role("heading", name="Projects", exact=True)).to_be_visible()
    expect(page.get_by_text("No projects yet.")).to_be_visible()
    page.get_by_test_id("project-search").fill("Lighthouse")
    expect(page.locator(CARD)).to_have_count(0)
    page.context.set_offline(True)
    page.reload()
    expect(page.locator(CARD)).to_have_count(0)
    screenshot(page, "signed-out-next-person-desktop")
    page.context.close()
