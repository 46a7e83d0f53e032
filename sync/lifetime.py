"""A child process that must not outlive the process that started it."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: signal.Signals = signal.SIGTERM, parent: int | None = None) -> None:
    """Ask Linux to send ``sig`` to this process when its parent dies, even by ``kill -9``.

    With ``parent`` (the pid it was started by), a parent that died before the request took
    effect ends this process at once. Elsewhere than Linux, or under init, nothing happens."""
    if sys.platform.startswith("linux") and os.getppid() != 1:
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, sig)
    if parent is not None and os.getppid() != parent:  # gone already, or before the request took
        os._exit(0)
