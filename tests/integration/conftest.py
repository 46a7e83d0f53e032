"""Fixtures shared by the integration suites."""

from __future__ import annotations

# The npm yjs/y-websocket clients (one Node process per module, one Node wrapper per test).
from tests.integration.test_sync_interop import node, node_process  # noqa: F401

# A real HTTP receiver of webhook deliveries.
from tests.integration.test_webhooks import receiver  # noqa: F401
