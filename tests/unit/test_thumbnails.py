"""Previews of uploaded media (tasks/thumbnails.py), on real files FFmpeg and Pillow wrote."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import pytest
from PIL import Image

from tasks.thumbnails import UnreadableMedia, make_thumbnail
from tests.media import audio_only, near, png, two_halves, video


def thumb(path: Path, size: int = 320) -> Image.Image:
    return Image.open(io.BytesIO(make_thumbnail(path, size, path.name))).convert("RGB")


def middle(img: Image.Image) -> tuple[int, ...]:
    return tuple(img.getpixel((img.width // 2, img.height // 2)))


@pytest.mark.parametrize(
    ("name", "codec"), [("clip.mp4", "mpeg4"), ("clip.webm", "libvpx-vp9"), ("clip.mov", "libx264")]
)
def test_a_video_preview_is_its_first_picture_scaled_to_its_shape(
    tmp_path: Path, name: str, codec: str
) -> None:
    video(tmp_path / name, codec, 640, 360, [(200, 40, 40), (40, 40, 200)])
    img = thumb(tmp_path / name)
    assert img.size == (320, 180)
    assert near(middle(img), (200, 40, 40)), middle(img)


def test_a_fade_in_is_skipped_for_the_first_picture_that_shows_something(tmp_path: Path) -> None:
    video(tmp_path / "fade.webm", "libvpx-vp9", 64, 96, [(0, 0, 0), (0, 0, 0), (30, 90, 220)])
    img = thumb(tmp_path / "fade.webm")
    assert img.size == (64, 96)  # small video: never enlarged
    assert near(middle(img), (30, 90, 220)), middle(img)


def test_a_video_black_throughout_still_gets_its_first_picture(tmp_path: Path) -> None:
    video(tmp_path / "night.mp4", "mpeg4", 96, 54, [(0, 0, 0)])
    assert near(middle(thumb(tmp_path / "night.mp4")), (0, 0, 0))


def test_non_square_pixels_are_shown_at_their_displayed_width(tmp_path: Path) -> None:
    video(tmp_path / "anamorphic.mp4", "mpeg4", 64, 64, [(40, 200, 40)], pixel_ratio=Fraction(2, 1))
    assert thumb(tmp_path / "anamorphic.mp4").size == (128, 64)


@pytest.mark.parametrize(("rotation", "top"), [(-90, (255, 0, 0)), (90, (0, 0, 255))])
def test_a_phone_video_is_turned_the_way_it_plays(
    tmp_path: Path, rotation: int, top: tuple[int, int, int]
) -> None:
    # Played turned a quarter clockwise (-90), the left (red) half is on top; anticlockwise, the right.
    two_halves(tmp_path / "phone.mp4", (255, 0, 0), (0, 0, 255), rotation=rotation)
    img = thumb(tmp_path / "phone.mp4")
    assert img.size == (48, 96)
    assert near(img.getpixel((24, 8)), top, tolerance=24), img.getpixel((24, 8))


def test_an_image_preview_keeps_working(tmp_path: Path) -> None:
    (tmp_path / "still.png").write_bytes(png((10, 200, 30), (800, 400)))
    img = thumb(tmp_path / "still.png")
    assert img.size == (320, 160)
    assert near(middle(img), (10, 200, 30), tolerance=2)


@pytest.mark.parametrize(
    ("name", "make", "words"),
    [
        (
            "broken.mp4",
            lambda p: p.write_bytes(b"this was never a video" * 50),
            "could not be read as a video",
        ),
        ("song.mp4", audio_only, "holds no video track"),
        ("cut.webm", None, "could not be read as a video"),
        ("not-really.png", lambda p: p.write_bytes(b"GIF89a nonsense"), "not an image this studio can read"),
    ],
)
def test_unreadable_media_is_refused_in_words_a_person_can_act_on(
    tmp_path: Path, name: str, make: object, words: str
) -> None:
    path = tmp_path / name
    if make is None:  # a video cut off in its first bytes, as a stopped upload leaves it
        whole = video(tmp_path / "whole.webm", "libvpx-vp9", 64, 64, [(200, 40, 40)])
        path.write_bytes(whole[:40])
    else:
        make(path)  # type: ignore[operator]
    with pytest.raises(UnreadableMedia) as caught:
        make_thumbnail(path, 320, f"01_Assets/Uploads/{name}")
    message = str(caught.value)
    assert words in message
    assert f"01_Assets/Uploads/{name}" in message
