"""Previews of uploaded media: a still image scaled down, or a video's first picture.

Video is read with PyAV (FFmpeg's decoders, bundled in its wheels), so whatever FFmpeg plays —
H.264/H.265 MP4 and MOV, VP8/VP9/AV1 WebM, MPEG-4 Part 2 — gets a preview. The frame taken is the
first one that is not black (films often fade in), looked for in the first couple of seconds;
the preview keeps the picture's displayed shape (anamorphic pixels, a phone's rotation).

>>> png = make_thumbnail(Path("clip.mp4"), 320, "01_Assets/Uploads/clip.mp4")  # doctest: +SKIP
"""

from __future__ import annotations

import io
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path, PurePosixPath

import av
from PIL import Image, ImageStat, UnidentifiedImageError

# The video files the studio takes (each is a Git LFS rule of every project: sync.lfs).
VIDEO_SUFFIXES = (".mp4", ".mov", ".webm")
# How far into a video to look for a picture that is not black before taking the first one.
LOOK_AHEAD_S = 2.0
LOOK_AHEAD_FRAMES = 60
# A frame whose brightest channel mean stays under this (of 255) counts as black.
BLACK_MEAN = 12.0


class UnreadableMedia(Exception):
    """The file is not media this studio can make a preview of; the message says what to do."""


def is_video(path: str) -> bool:
    return PurePosixPath(path).suffix.lower() in VIDEO_SUFFIXES


def make_thumbnail(
    source: Path, size: int, label: str, cancelled: Callable[[], bool] = lambda: False
) -> bytes:
    """A PNG of ``source`` whose longest side is at most ``size`` (never enlarged); ``label`` names
    the file in error messages. Raises :class:`UnreadableMedia`."""
    picture = first_frame(source, label, cancelled) if is_video(label) else _still(source, label)
    picture.thumbnail((size, size))
    buf = io.BytesIO()
    picture.save(buf, format="PNG")
    return buf.getvalue()


def _still(source: Path, label: str) -> Image.Image:
    try:
        with Image.open(source) as img:
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError):
        raise UnreadableMedia(f"'{label}' is not an image this studio can read (PNG, JPEG, WebP…).") from None


def first_frame(source: Path, label: str, cancelled: Callable[[], bool] = lambda: False) -> Image.Image:
    """The video's first picture that is not black (or its very first one, if all are), as RGB
    with the shape it is displayed in."""
    try:
        container = av.open(str(source), mode="r")
    except av.FFmpegError as exc:
        raise UnreadableMedia(_unreadable(label, exc)) from None
    with container:
        stream = next(iter(container.streams.video), None)
        if stream is None:
            raise UnreadableMedia(
                f"'{label}' holds no video track (is it an audio file?), so it has no picture to preview."
            )
        if stream.codec_context is None:
            raise UnreadableMedia(
                f"'{label}' uses a video codec this studio cannot decode. "
                "Export it again as H.264 MP4 or VP9 WebM and upload that."
            )
        first: Image.Image | None = None
        try:
            for n, frame in enumerate(container.decode(stream)):
                picture = _displayed(frame, stream.sample_aspect_ratio)
                if first is None:
                    first = picture
                if not _black(picture):
                    return picture
                seconds = float(frame.time) if frame.time is not None else 0.0
                if cancelled() or n + 1 >= LOOK_AHEAD_FRAMES or seconds >= LOOK_AHEAD_S:
                    break
        except av.FFmpegError as exc:
            if first is None:
                raise UnreadableMedia(_unreadable(label, exc)) from None
            # A damaged stretch after a good picture: the picture we have will do.
        if first is None:
            raise UnreadableMedia(
                f"'{label}' has a video track but no picture could be decoded from it: the file may be "
                "cut short. Upload the complete file, or export it again."
            )
        return first


def _displayed(frame: av.VideoFrame, ratio: Fraction | None) -> Image.Image:
    picture: Image.Image = frame.to_image()  # type: ignore[no-untyped-call]
    # Anamorphic video stores non-square pixels (``ratio``: a pixel's width over its height, as
    # FFmpeg works it out from the container and the codec): stretch to the shape a player shows.
    if ratio is not None and ratio > 0 and ratio != 1:
        width = max(1, round(picture.width * Fraction(ratio)))
        picture = picture.resize((width, picture.height), Image.Resampling.BILINEAR)
    # Phones record sideways and say how to turn the picture (the display matrix).
    turn = round(frame.rotation or 0) % 360
    if turn in (90, 180, 270):
        picture = picture.rotate(turn, expand=True)
    return picture


def _black(picture: Image.Image) -> bool:
    small = picture.copy()
    small.thumbnail((64, 64))
    return max(ImageStat.Stat(small).mean) < BLACK_MEAN


def _unreadable(label: str, exc: Exception) -> str:
    reason = getattr(exc, "strerror", None) or str(exc)
    return (
        f"'{label}' could not be read as a video ({reason}). The file may be damaged or only partly "
        "uploaded, or use a format FFmpeg does not know: upload it again, or export it as H.264 MP4 "
        "or VP9 WebM."
    )
