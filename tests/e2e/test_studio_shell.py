"""The studio shell as a newcomer meets it: a real ``studio serve`` (Granian) serving the built PWA,
driven through Debian's headless Chromium.

One server for the whole module (with the sample projects seeded for every new guest); each test
gets a fresh browser context, so each test is a new guest with their own copy of the samples.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import LiveServer, git
from tests.e2e.studio_helpers import CARD, start_as_guest

pytestmark = pytest.mark.e2e
SEED_SAMPLES = True  # the studio gives each new person the sample projects

SAMPLES = ["Low Tide", "Lost Property"]


# -- helpers ----------------------------------------------------------------------------------------


def card_names(page: Page) -> Any:
    return page.locator(CARD).get_by_role("heading")


def wait_for_loaded_previews(page: Page, count: int) -> None:
    """Every card shows a preview <img> whose image really decoded (not the placeholder)."""
    page.wait_for_function(
        """n => {
            const cards = [...document.querySelectorAll('[data-testid=project-card]')];
            const imgs = cards.map(c => c.querySelector('img'));
            return cards.length === n && imgs.every(i => i && i.complete && i.naturalWidth > 0);
        }""",
        arg=count,
        timeout=10_000,
    )


def service_worker_ready(page: Page, timeout_ms: int = 10_000) -> bool:
    """Whether the page's service worker became active within ``timeout_ms`` (never hangs)."""
    return bool(
        page.evaluate(
            """ms => Promise.race([
                navigator.serviceWorker.ready.then(() => true),
                new Promise(resolve => setTimeout(() => resolve(false), ms)),
            ])""",
            timeout_ms,
        )
    )


def project_folders(studio: LiveServer) -> set[str]:
    projects = studio.workspace / "Projects"
    return {p.name for p in projects.iterdir() if p.is_dir()} if projects.exists() else set()


# -- tests ------------------------------------------------------------------------------------------


def test_a_newcomer_starts_as_guest_and_sees_the_sample_projects(
    browser_page: Page, studio: LiveServer
) -> None:
    page = browser_page
    # Given a newcomer who opens the studio for the first time
    page.goto(studio.url)

    # Then, with no click and no form, they are a guest and the gallery shows the two sample
    # projects, each with a preview that loaded
    expect(page.get_by_role("heading", name="Projects", exact=True)).to_be_visible()
    expect(page.get_by_test_id("guest-start")).to_have_count(0)
    expect(page.get_by_text("Server online")).to_be_visible()
    assert page.evaluate("localStorage.getItem('studio.token')")
    expect(page.locator(CARD)).to_have_count(2)
    assert sorted(card_names(page).all_inner_texts()) == sorted(SAMPLES)
    expect(page.get_by_text("2 projects")).to_be_visible()
    for name in SAMPLES:
        expect(page.get_by_role("img", name=f"Preview of {name}")).to_be_visible()
    wait_for_loaded_previews(page, 2)

    # And a later visit without a session (signed out) asks before starting a new, empty one
    page.evaluate("localStorage.removeItem('studio.token'); localStorage.removeItem('studio.user')")
    page.reload()
    expect(page.get_by_test_id("guest-start")).to_be_visible()
    expect(page.get_by_role("heading", name="Make films with generative media")).to_be_visible()


def test_creating_a_project_adds_its_card_and_a_committed_repository(
    browser_page: Page, studio: LiveServer
) -> None:
    page = browser_page
    start_as_guest(page, studio)
    expect(page.locator(CARD)).to_have_count(2)

    # When they name a project, pick the Save the Cat template and press Create
    page.get_by_test_id("new-project-name").fill("Harbour Lights")
    page.get_by_test_id("new-project-template").select_option("save-the-cat")
    with page.expect_response(
        lambda r: r.url.endswith("/api/projects") and r.request.method == "POST"
    ) as created:
        page.get_by_test_id("new-project-create").click()
    assert created.value.status == 201, created.value.text()
    project = created.value.json()

    # Then its card joins the gallery, and the name field is ready for the next one
    expect(page.locator(CARD)).to_have_count(3)
    expect(page.locator(CARD).filter(has_text="Harbour Lights")).to_have_count(1)
    expect(page.get_by_test_id("new-project-name")).to_have_value("")
    wait_for_loaded_previews(page, 3)

    # And the project is a real, clean Git repository under Projects/ in the workspace
    folder = studio.workspace / project["path"]
    assert folder.parent == studio.workspace / "Projects"
    assert folder.name == "Harbour_Lights"
    manifest = json.loads((folder / "project.json").read_text(encoding="utf-8"))
    assert manifest["name"] == "Harbour Lights"
    assert manifest["template"] == "save-the-cat"
    assert manifest["uuid"] == project["id"]
    assert git(folder, "status", "--porcelain") == ""
    assert len(git(folder, "log", "--oneline").splitlines()) == 1


def test_search_narrows_the_gallery_and_clearing_it_brings_everything_back(
    browser_page: Page, studio: LiveServer
) -> None:
    page = browser_page
    start_as_guest(page, studio)
    expect(page.locator(CARD)).to_have_count(2)
    search = page.get_by_test_id("project-search")

    # When they type part of a project's name
    search.fill("tide")

    # Then only the matching project is left
    expect(page.locator(CARD)).to_have_count(1)
    expect(card_names(page)).to_have_text(["Low Tide"])
    expect(page.get_by_text("1 project", exact=True)).to_be_visible()

    # When the search matches nothing, the gallery says so
    search.fill("zeppelin")
    expect(page.locator(CARD)).to_have_count(0)
    expect(page.get_by_text("No projects match your search.")).to_be_visible()

    # When they clear the search, every project is back
    search.fill("")
    expect(page.locator(CARD)).to_have_count(2)
    assert sorted(card_names(page).all_inner_texts()) == sorted(SAMPLES)


def test_an_api_error_is_shown_to_the_user_and_nothing_is_created(
    browser_page: Page, studio: LiveServer
) -> None:
    page = browser_page
    start_as_guest(page, studio)
    expect(page.locator(CARD)).to_have_count(2)
    folders_before = project_folders(studio)

    # When they try to create a project whose name is only dots
    page.get_by_test_id("new-project-name").fill("...")
    with page.expect_response(
        lambda r: r.url.endswith("/api/projects") and r.request.method == "POST"
    ) as refused:
        page.get_by_test_id("new-project-create").click()
    assert refused.value.status == 422
    problem = refused.value.json()
    assert problem["detail"]

    # Then the server's explanation is shown as an alert
    alert = page.get_by_role("alert")
    expect(alert).to_have_text(problem["detail"])
    expect(alert).to_contain_text("dots")

    # And no card and no folder appeared; the name stays there to be corrected
    expect(page.locator(CARD)).to_have_count(2)
    expect(page.get_by_test_id("new-project-name")).to_have_value("...")
    assert project_folders(studio) == folders_before


def test_reloading_keeps_the_guest_signed_in_with_the_same_projects(
    browser_page: Page, studio: LiveServer
) -> None:
    page = browser_page
    start_as_guest(page, studio)
    expect(page.locator(CARD)).to_have_count(2)
    token = page.evaluate("localStorage.getItem('studio.token')")
    assert token
    names = sorted(card_names(page).all_inner_texts())

    # When they reload the page
    page.reload()

    # Then they are still signed in, with the same token and the same projects
    expect(page.get_by_role("heading", name="Projects", exact=True)).to_be_visible()
    expect(page.get_by_test_id("guest-start")).to_have_count(0)
    expect(page.locator(CARD)).to_have_count(2)
    assert sorted(card_names(page).all_inner_texts()) == names
    assert page.evaluate("localStorage.getItem('studio.token')") == token
    wait_for_loaded_previews(page, 2)


def test_the_newest_project_stays_first_after_a_reload(browser_page: Page, studio: LiveServer) -> None:
    page = browser_page
    start_as_guest(page, studio)
    expect(page.locator(CARD)).to_have_count(2)

    # Given a project they just created, shown first in the gallery
    page.get_by_test_id("new-project-name").fill("Morning Swim")
    page.get_by_test_id("new-project-create").click()
    expect(page.locator(CARD)).to_have_count(3)
    expect(card_names(page).first).to_have_text("Morning Swim")
    order = card_names(page).all_inner_texts()

    # When they reload the page, the gallery keeps the same order (most recently updated first)
    page.reload()
    expect(page.locator(CARD)).to_have_count(3)
    expect(card_names(page)).to_have_text(order, timeout=2_000)


def test_the_app_shell_still_opens_offline_once_the_service_worker_runs(
    browser: Any, studio: LiveServer
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, service_workers="allow")
    try:
        page = context.new_page()
        # Given a signed-in guest whose page is controlled by the studio's service worker
        start_as_guest(page, studio)
        expect(page.locator(CARD)).to_have_count(2)
        assert service_worker_ready(page), "the service worker never became active"
        page.reload()
        page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=10_000)

        # When the network goes away and they reload
        context.set_offline(True)
        response = page.reload()

        # Then the app shell renders from the cache instead of Chromium's offline error page
        assert not page.url.startswith("chrome-error://")
        assert response is None or response.from_service_worker
        expect(page).to_have_title("Projects · Generative Media Studio")
        expect(page.get_by_text("Generative Media Studio", exact=True)).to_be_visible()
        expect(page.get_by_role("heading", name="Projects", exact=True)).to_be_visible()
        # And the live data, which is never served stale, says it cannot be reached
        expect(page.get_by_text("Server unreachable")).to_be_visible()
        expect(page.get_by_role("alert").first).to_contain_text("Could not reach the studio server")
    finally:
        context.close()


def test_pages_carry_a_csp_and_run_without_violating_it(browser_page: Page, studio: LiveServer) -> None:
    page = browser_page
    console: list[str] = []
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    page.on("pageerror", lambda exc: console.append(f"pageerror: {exc}"))
    page.add_init_script(
        "window.__cspViolations = [];"
        "document.addEventListener('securitypolicyviolation',"
        " e => window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"
    )

    # When the studio's page is loaded
    response = page.goto(studio.url)

    # Then its HTML response carries a Content-Security-Policy
    assert response is not None
    assert response.ok
    headers = response.headers
    assert headers["content-type"].startswith("text/html")
    csp = headers.get("content-security-policy", "")
    assert re.search(r"(^|;)\s*default-src 'self'", csp), csp
    assert "script-src" in csp
    assert "'unsafe-eval'" not in csp
    assert "frame-ancestors 'none'" in csp

    # And a whole session (start, gallery with previews, a new project) breaks none of it
    expect(page.locator(CARD)).to_have_count(2)
    wait_for_loaded_previews(page, 2)
    page.get_by_test_id("new-project-name").fill("Night Ferry")
    page.get_by_test_id("new-project-create").click()
    expect(page.locator(CARD)).to_have_count(3)
    wait_for_loaded_previews(page, 3)
    assert service_worker_ready(page), "the service worker never became active"

    assert page.evaluate("window.__cspViolations") == []
    assert [m for m in console if "Content Security Policy" in m] == []
    assert [m for m in console if m.startswith("pageerror")] == []
