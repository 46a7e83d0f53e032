"""What ``studio worker`` hands to Dramatiq: installs the configured broker, then the actors."""

from __future__ import annotations

import os

from tasks.broker import install

broker = install(os.environ.get("STUDIO_BROKER_URL") or None)
