"""What the PWA end-to-end tests share: starting as a guest, opening a project, reading the canvas,
waiting for the sync state and for the server's Git repository, and saving screenshots."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from tests.conftest import ROOT, LiveServer

ARTIFACTS = ROOT / "tests" / "artifacts"
CARD = "[data-testid=project-card]"
NODE = ".svelte-flow__node"
EDGE = ".svelte-flow__edge"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
AXE = ROOT / "pwa" / "node_modules" / "axe-core" / "axe.min.js"


def start_as_guest(page: Page, studio: LiveServer) -> None:
    """Open the studio for the first time: it starts a guest session by itself; wait for the gallery."""
    page.goto(studio.url)
    expect(page.get_by_role("heading", name="Projects", exact=True)).to_be_visible()


def open_project(page: Page, name: str) -> str:
    """Open the gallery card called ``name``; returns the project id from the URL."""
    page.locator(CARD).filter(has_text=name).get_by_test_id("open-project").click()
    page.wait_for_url("**/projects/*")
    expect(page.get_by_test_id("project-name")).to_have_text(name)
    return page.url.rstrip("/").rsplit("/", 1)[-1]


def node_ids(page: Page) -> set[str]:
    return set(page.eval_on_selector_all(NODE, "els => els.map(e => e.dataset.id)"))


def expect_sync(page: Page, state: str, pending: int | None = None, timeout: float = 15_000) -> None:
    badge = page.get_by_test_id("sync-state")
    expect(badge).to_have_attribute("data-state", state, timeout=timeout)
    if pending is not None:
        expect(badge).to_have_attribute("data-pending", str(pending), timeout=timeout)


def add_node(page: Page, node_type: str) -> str:
    """Add a node of ``node_type`` with the canvas toolbar; returns the new node's id."""
    before = node_ids(page)
    page.get_by_test_id("node-type").select_option(node_type)
    page.get_by_test_id("add-node").click()
    page.wait_for_function("n => document.querySelectorAll('.svelte-flow__node').length > n", arg=len(before))
    (new,) = node_ids(page) - before
    return new


def project_dir(studio: LiveServer, project_id: str) -> Path:
    for manifest in (studio.workspace / "Projects").glob("*/project.json"):
        if json.loads(manifest.read_text(encoding="utf-8"))["uuid"] == project_id:
            return manifest.parent
    raise AssertionError(f"no repository for project {project_id}")


def committed_canvas(folder: Path, canvas: str = "main") -> dict[str, Any]:
    """The canvas as the last commit holds it (not just the working tree)."""
    from tests.conftest import git

    text = git(folder, "show", f"HEAD:02_Source_Creative/Canvases/{canvas}.json")
    return dict(json.loads(text))


def wait_for_commit(folder: Path, check: Any, timeout: float = 20.0) -> dict[str, Any]:
    """Poll the repository's HEAD canvas until ``check(canvas)`` holds (the materializer commits
    a second after the last edit)."""
    deadline = time.monotonic() + timeout
    canvas: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            canvas = committed_canvas(folder)
            if check(canvas):
                return canvas
        except Exception:  # noqa: S110 - not committed yet
            pass
        time.sleep(0.25)
    raise AssertionError(f"the repository never got the change; HEAD canvas: {json.dumps(canvas)[:2000]}")


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def sw_controls(page: Page) -> None:
    """Wait until the service worker is active and controls the page (reloading once if needed)."""
    page.evaluate("navigator.serviceWorker.ready")
    if not page.evaluate("navigator.serviceWorker.controller !== null"):
        page.reload()
    page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=10_000)


def axe_violations(page: Page) -> list[str]:
    """Serious and critical axe-core violations on the page as it is now (the page's context
    needs ``bypass_csp=True``: axe-core is injected as an inline script)."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
