"""Accounts in the browser: a person who signed up on one device signs in on another (a fresh
browser context) and finds their projects; wrong passwords are explained in words; signing out
and in again works from the keyboard alone; the screens pass axe-core."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import LiveServer
from tests.e2e.studio_helpers import CARD, DESKTOP, PHONE, axe_violations, screenshot, start_as_guest

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
    context.close()
