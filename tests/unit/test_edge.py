from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from app import logs
from app.edge import TokenBuckets, _host_only
from app.logs import redact_query

ROOT = Path(__file__).resolve().parents[2]


def test_buckets_allow_a_burst_then_the_rate() -> None:
    b = TokenBuckets(rate=2, burst=4)
    assert [b.take("u", now=0.0) for _ in range(4)] == [0.0] * 4
    assert b.take("u", now=0.0) == pytest.approx(0.5)
    assert b.take("u", now=0.5) == 0.0
    assert b.take("other", now=0.5) == 0.0


def test_buckets_forget_idle_keys_when_full() -> None:
    b = TokenBuckets(rate=1, burst=1, max_keys=10)
    for i in range(20):
        b.take(f"k{i}", now=float(i * 10))
    assert len(b._buckets) <= 11


@pytest.mark.parametrize(
    ("header", "host"),
    [
        ("127.0.0.1:8000", "127.0.0.1"),
        ("LocalHost", "localhost"),
        ("[::1]:8000", "[::1]"),
        ("a.b:1", "a.b"),
        ("", ""),
    ],
)
def test_host_header_port_is_stripped(header: str, host: str) -> None:
    assert _host_only(header) == host


def test_secrets_in_query_strings_are_redacted() -> None:
    assert redact_query("token=abc.def&q=film") == "token=[redacted]&q=film"
    assert redact_query("Password=x") == "Password=[redacted]"
    assert redact_query("") == ""


def test_a_workers_routine_reports_stay_out_of_the_info_access_log(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from app.edge import _routine

    progress = "/api/worker/tasks/t1/progress"
    assert _routine(progress, 200)
    assert _routine("/api/worker/heartbeat", 200)
    assert not _routine(progress, 409)  # a refusal is news
    assert not _routine("/api/worker/tasks/t1/finish", 200)
    assert not _routine("/api/projects", 200)
    try:
        for level in (logging.INFO, logging.DEBUG):
            logs.configure("json", level)
            logs.access_log({"event": "request", "path": progress}, routine=_routine(progress, 200))
            logs.access_log({"event": "request", "path": "/api/projects"})
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
        assert [(line["path"], line["level"]) for line in lines] == [
            ("/api/projects", "info"),  # INFO: the project list only
            (progress, "debug"),
            ("/api/projects", "info"),
        ]
    finally:
        logs.configure("json", logging.INFO)


def test_access_lines_of_a_busy_loop_turn_all_reach_stderr_in_order(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("json")

    async def burst() -> None:
        for i in range(5):
            logs.access_log({"event": "request", "path": f"/api/projects/{i}"})
        await asyncio.sleep(0)  # the loop's next turn

    asyncio.run(burst())
    paths = [json.loads(line)["path"] for line in capsys.readouterr().err.splitlines()]
    assert paths == [f"/api/projects/{i}" for i in range(5)]


def test_access_lines_are_not_lost_when_the_loop_stops_before_its_next_turn() -> None:
    # The server is stopped right after answering: the lines of its last turn still get written.
    script = (
        "import asyncio\n"
        "from app import logs\n"
        "logs.configure('json')\n"
        "loop = asyncio.new_event_loop()\n"
        "def last():\n"
        "    loop.stop()  # this turn is the loop's last\n"
        "    logs.access_log({'event': 'request', 'path': '/api/last'})\n"
        "loop.call_soon(last)\n"
        "loop.run_forever()\n"
        "loop.close()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert [json.loads(line)["path"] for line in done.stderr.splitlines()] == ["/api/last"]
