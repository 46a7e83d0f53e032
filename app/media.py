"""Serving project files (assets, takes, thumbnails) to members: ETag and single-range requests.

>>> file_response(request, path, etag='"ab12…"', filename="take_0001.png")  # doctest: +SKIP
"""

from __future__ import annotations

import mimetypes
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from litestar import Request
from litestar.response import File, Response, Stream


def file_response(request: Request[Any, Any, Any], path: Path, *, etag: str, filename: str) -> Response[Any]:
    """The bytes of ``path``: 304 for a matching ``If-None-Match``, 206 for ``Range: bytes=a-b``
    (video players seek with it), 416 for a range outside the file."""
    size = path.stat().st_size
    # Kept by the browser, but asked about each time (a 304 when unchanged): an asset replaced
    # under the same URL shows at once.
    headers = {"ETag": etag, "Accept-Ranges": "bytes", "Cache-Control": "private, no-cache"}
    if request.headers.get("if-none-match") == etag:
        return Response(b"", status_code=304, headers=headers)
    wanted = request.headers.get("range")
    if not wanted:
        return File(path, filename=filename, etag=None, headers=headers)
    span = _parse_range(wanted, size)
    if span is None:
        return Response(b"", status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    start, end = span
    media_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return Stream(
        _chunks(path, start, end), status_code=206, media_type=media_type,
        headers={**headers, "Content-Range": f"bytes {start}-{end}/{size}", "Content-Length": str(end - start + 1)},
    )  # fmt: skip


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """``bytes=a-b``, ``bytes=a-`` or ``bytes=-n`` (one range) as inclusive offsets; None if unsatisfiable."""
    unit, _, spec = header.partition("=")
    if unit.strip() != "bytes" or "," in spec or "-" not in spec:
        return None
    first, _, last = spec.strip().partition("-")
    try:
        if first == "":
            length = int(last)
            start, end = max(0, size - length), size - 1
        else:
            start = int(first)
            end = min(int(last), size - 1) if last else size - 1
    except ValueError:
        return None
    return (start, end) if 0 <= start <= end < size else None


async def _chunks(path: Path, start: int, end: int) -> AsyncIterator[bytes]:
    left = end - start + 1
    with open(path, "rb") as fh:  # noqa: ASYNC230 - a local file read in 256 KiB steps
        fh.seek(start)
        while left > 0:
            chunk = fh.read(min(left, 256 * 1024))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk
