from __future__ import annotations

import pytest

from app.edge import TokenBuckets, _host_only
from app.logs import redact_query


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
