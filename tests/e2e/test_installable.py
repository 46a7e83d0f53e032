"""The studio as an installable app: Chromium's own installability check passes (manifest, icons,
service worker that serves the start URL offline), the manifest's "New project" shortcut lands in
the name field, and a new deploy is offered with a prompt instead of a silent reload."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.conftest import CHROMIUM_ARGS, ROOT, LiveServer, start_server, stop_server
from tests.e2e.studio_helpers import CARD, DESKTOP, start_as_guest, sw_controls

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Path]]:
    # The server serves a copy of the built app, so a test can "deploy" a new version into it.
    tmp = tmp_path_factory.mktemp("installable")
    build = tmp / "pwa-build"
    shutil.copytree(ROOT / "pwa" / "build", build)
    server = start_server(tmp, STUDIO_SEED_SAMPLES="true", STUDIO_PWA_DIR=str(build))
    yield server, build
    stop_server(server)


def test_the_manifest_has_what_installing_needs(studio: tuple[LiveServer, Path]) -> None:
    server, _ = studio
    manifest = httpx.get(f"{server.url}/manifest.webmanifest").json()
    assert manifest["name"] == "Generative Media Studio"
    assert manifest["short_name"]
    assert manifest["display"] == "standalone"
    assert manifest["start_url"] == "/"
    assert manifest["theme_color"]
    icons = {(i["sizes"], i.get("purpose", "any")) for i in manifest["icons"]}
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= icons
    for icon in manifest["icons"]:
        r = httpx.get(f"{server.url}{icon['src']}")
        assert r.status_code == 200, icon
        assert r.headers["content-type"].startswith("image/"), icon
    (shortcut,) = manifest["shortcuts"]
    assert shortcut["name"] == "New project"
    assert shortcut["url"] == "/?new=1"


def test_chromium_finds_the_studio_installable(
    browser: Any, studio: tuple[LiveServer, Path], tmp_path: Path
) -> None:
    server, _ = studio
    # A profile on disk, as a person has: Chromium never offers installing from an incognito one.
    context = browser.browser_type.launch_persistent_context(
        str(tmp_path / "profile"),
        executable_path=shutil.which("chromium"),
        headless=True,
        args=CHROMIUM_ARGS,
        viewport=DESKTOP,
    )
    try:
        page = context.new_page()
        start_as_guest(page, server)
        sw_controls(page)
        cdp = context.new_cdp_session(page)
        result = cdp.send("Page.getInstallabilityErrors")
        assert result["installabilityErrors"] == [], json.dumps(result)
        manifest = cdp.send("Page.getAppManifest")
        assert manifest["errors"] == [], json.dumps(manifest["errors"])
    finally:
        context.close()


def test_the_new_project_shortcut_opens_with_the_name_field_ready(
    context: Any, studio: tuple[LiveServer, Path]
) -> None:
    server, _ = studio
    page = context.new_page()
    start_as_guest(page, server)
    # The list of templates is slow to come (a busy server): typing a name and Enter still creates
    held: list[Any] = []

    def hold(route: Any) -> None:
        held.append(route)

    page.route("**/api/templates*", hold)
    page.evaluate("localStorage.removeItem('studio.templates')")
    page.goto(f"{server.url}/?new=1")
    expect(page.get_by_test_id("new-project-name")).to_be_focused()
    page.keyboard.type("From The Shortcut")
    page.keyboard.press("Enter")
    expect(page.locator(CARD).filter(has_text="From The Shortcut")).to_have_count(1)
    assert held, "the templates were asked for and held back"
    page.unroute("**/api/templates*")  # the held request goes on to the server


def test_a_new_version_is_offered_and_loads_only_when_asked(
    context: Any, studio: tuple[LiveServer, Path]
) -> None:
    server, build = studio
    page = context.new_page()
    start_as_guest(page, server)
    sw_controls(page)
    expect(page.get_by_test_id("update-banner")).to_have_count(0)
    page.evaluate("window.__beforeUpdate = true")

    # When a new version is deployed (a changed service worker) and the page checks for it
    worker = build / "service-worker.js"
    worker.write_text(worker.read_text(encoding="utf-8") + "\n// next deploy\n", encoding="utf-8")
    try:
        page.evaluate("navigator.serviceWorker.getRegistration().then(r => r.update())")

        # Then the page offers it, and nothing reloads by itself
        banner = page.get_by_test_id("update-banner")
        expect(banner).to_contain_text("A new version of the studio is ready", timeout=15_000)
        page.wait_for_timeout(500)
        assert page.evaluate("window.__beforeUpdate === true")

        # When they accept, the new version takes over and the page reloads once
        with page.expect_navigation():
            page.get_by_test_id("update-reload").click()
        assert page.evaluate("window.__beforeUpdate === undefined")
        expect(page.get_by_role("heading", name="Projects", exact=True)).to_be_visible()
        expect(page.get_by_test_id("update-banner")).to_have_count(0)
        assert page.evaluate("navigator.serviceWorker.controller !== null")
    finally:
        worker.write_text(
            worker.read_text(encoding="utf-8").removesuffix("\n// next deploy\n"), encoding="utf-8"
        )
