"""Fixtures the end-to-end modules share: a studio per module, and a fresh browser page or context.

A module says what it needs with module-level settings:

- ``SEED_SAMPLES = True``: its studio gives each new person the sample projects (default: not);
- ``PAGE_OPTIONS = {...}``: options for the ``page`` fixture's browser context, over the default
  desktop viewport with ``bypass_csp`` (axe-core is injected as an inline script, which the
  studio's CSP rightly refuses).

A module that needs another kind of studio defines its own ``studio`` fixture, which wins.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page

from tests.conftest import LiveServer, start_server, stop_server
from tests.e2e.studio_helpers import DESKTOP


@pytest.fixture(scope="module")
def studio(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    seed = "true" if getattr(request.module, "SEED_SAMPLES", False) else "false"
    # One module's tests sign in and out a dozen times in seconds from one address: more than the
    # default limit on sign-ins lets through (tests/integration/test_http_edge.py checks that limit).
    server = start_server(
        tmp_path_factory.mktemp("workspace"), STUDIO_SEED_SAMPLES=seed, STUDIO_RATE_LIMIT_AUTH="50"
    )
    yield server
    stop_server(server)


@pytest.fixture
def page(request: pytest.FixtureRequest, browser: Any) -> Iterator[Page]:
    options = {"viewport": DESKTOP, "bypass_csp": True, **getattr(request.module, "PAGE_OPTIONS", {})}
    context = browser.new_context(**options)
    yield context.new_page()
    context.close()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A desktop context whose service worker runs (installability, offline)."""
    ctx = browser.new_context(viewport=DESKTOP, service_workers="allow")
    yield ctx
    ctx.close()
