"""Real media files that tests make: short videos encoded with PyAV (FFmpeg), PNGs with Pillow.

>>> video(tmp_path / "clip.mp4", "mpeg4", 96, 54, [(200, 40, 40)])  # doctest: +SKIP
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image

Colour = tuple[int, int, int]


def video(
    path: Path, codec: str, width: int, height: int, colours: Sequence[Colour], *, frames: int = 6,
    pixel_ratio: Fraction | None = None, rotation: int | None = None,
) -> bytes:  # fmt: skip
    """Encode ``frames`` frames of solid colour at 24 fps into ``path`` (the container follows the
    suffix): frame ``i`` is ``colours[i]``, the last colour repeating. ``pixel_ratio``: stored
    non-square pixels; ``rotation``: a display matrix turning the picture counter-clockwise, as
    phones write. Returns the file's bytes."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=24)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if pixel_ratio is not None:
            stream.codec_context.sample_aspect_ratio = pixel_ratio
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for i in range(frames):
            picture = Image.new("RGB", (width, height), colours[min(i, len(colours) - 1)])
            for packet in stream.encode(av.VideoFrame.from_image(picture)):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path.read_bytes()


def two_halves(path: Path, left: Colour, right: Colour, *, rotation: int) -> bytes:
    """A 96x48 MPEG-4 video, its left half ``left`` and its right half ``right``, turned by
    ``rotation`` degrees (counter-clockwise) when played."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=24)
        stream.width, stream.height, stream.pix_fmt = 96, 48, "yuv420p"
        stream.set_display_rotation(rotation)
        picture = Image.new("RGB", (96, 48), right)
        picture.paste(left, (0, 0, 48, 48))
        for packet in stream.encode(av.VideoFrame.from_image(picture)):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path.read_bytes()


def audio_only(path: Path) -> bytes:
    """A quarter second of silence as AAC in an MP4: a file with no picture at all."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=44100)
        for n in range(11):
            frame = av.AudioFrame(format="fltp", layout="mono", samples=1024)
            frame.planes[0].update(bytes(frame.planes[0].buffer_size))
            frame.sample_rate, frame.pts = 44100, n * 1024
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path.read_bytes()


def png(colour: Colour, size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def near(actual: Sequence[int], expected: Colour, tolerance: int = 12) -> bool:
    """Whether a decoded colour is ``expected`` give or take codec rounding."""
    return all(abs(a - e) <= tolerance for a, e in zip(actual[:3], expected, strict=True))
