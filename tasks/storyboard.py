"""A printable storyboard (contact sheet) of one scene's shots, as PNG and PDF.

``render_storyboard`` lays the shots of a scene out in a grid of 16:9 panels on 150 dpi pages
(A4 1240x1754 or Letter 1275x1650 pixels). The first page starts with a header (project name,
scene title, act and beat, and optionally the synopsis); later pages repeat a one-line header.
Each panel shows the newest take of its shot whose image file exists under the project root
(cover-fit), or else a neutral panel with the shot's description; under it the caption
"Shot N · camera · duration s". The PDF holds every page; the PNG is the first page only, a
preview at the same size. Pure plain-data work: no web framework or broker here.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from PIL import Image, ImageDraw, ImageFont, ImageOps
from pydantic import BaseModel, ConfigDict, Field

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

PAGE_SIZES: dict[str, tuple[int, int]] = {"A4": (1240, 1754), "Letter": (1275, 1650)}
DPI = 150
MARGIN = 70
GAP = 28
PAPER = (255, 255, 255)
INK = (24, 24, 24)
MUTED = (110, 110, 110)
PANEL = (236, 236, 236)
BORDER = (170, 170, 170)


class StoryboardParams(BaseModel):
    """What to print: which scene, how many panels across, on which paper."""

    model_config = ConfigDict(extra="forbid")

    scene: str = Field(min_length=1, title="Scene", description="The id of the scene to print.")
    columns: int = Field(
        default=3, ge=1, le=6, title="Columns", description="How many panels side by side (1 to 6)."
    )
    page: Literal["A4", "Letter"] = Field(
        default="A4", title="Paper", description="The paper size; pages are rendered at 150 dpi."
    )
    include_synopsis: bool = Field(
        default=True, title="Include synopsis", description="Print the scene's synopsis under its title."
    )


class Cancelled(Exception):
    """The render was cancelled between two panels."""


def render_storyboard(
    state: dict[str, Any],
    files: Path | Callable[[str], Path | None],
    params: StoryboardParams,
    progress: Callable[[float], None] = lambda p: None,
    cancelled: Callable[[], bool] = lambda: False,
) -> tuple[bytes, bytes]:
    """(PNG of the first page, PDF of all pages) of the storyboard of ``params.scene``.

    ``files`` gives a local path to read a project file (a take's image) from, or None; a folder
    stands for the project's working tree. Raises ``ValueError`` for an unknown scene and :class:`Cancelled` when ``cancelled()`` is
    true before a panel is drawn; calls ``progress(done / total)`` after each panel.
    """
    find = _in_folder(files) if isinstance(files, Path) else files
    story = state.get("story", {})
    scene = story.get("scenes", {}).get(params.scene)
    if not isinstance(scene, dict):
        raise ValueError(f"The scene '{params.scene}' does not exist in this project")
    shots = sorted(scene.get("shots", {}).items(), key=lambda kv: (kv[1].get("order", 0), kv[0]))
    width, height = PAGE_SIZES[params.page]
    inner = width - 2 * MARGIN
    panel_w = (inner - (params.columns - 1) * GAP) // params.columns
    panel_h = panel_w * 9 // 16
    caption_font = _font(max(14, min(24, panel_w // 16)))
    line_h = _line_height(caption_font)
    cell_h = panel_h + 8 + 2 * line_h + GAP
    footer_top = height - MARGIN + 20

    pages: list[Image.Image] = []
    draw: ImageDraw.ImageDraw | None = None
    top = row = col = rows_on_page = 0
    for index, slot in enumerate(shots or [None]):
        if cancelled():
            raise Cancelled
        if draw is None or (col == 0 and row == rows_on_page):
            page = Image.new("RGB", (width, height), PAPER)
            draw = ImageDraw.Draw(page)
            top = _header(draw, state, scene, params, first=not pages, width=width)
            rows_on_page = max(1, (footer_top - GAP - top) // cell_h)
            pages.append(page)
            row = col = 0
        x, y = MARGIN + col * (panel_w + GAP), top + row * cell_h
        box = (x, y, x + panel_w, y + panel_h)
        if slot is None:
            _text_panel(draw, box, "No shots yet", _font(max(18, panel_w // 14)))
        else:
            shot_id, shot = slot
            image = _take_image(state.get("takes", {}), find, params.scene, shot_id, (panel_w, panel_h))
            description = str(shot.get("description") or "")
            if image is not None:
                pages[-1].paste(image, (x, y))
                draw.rectangle(box, outline=BORDER, width=1)
            else:
                _text_panel(draw, box, description or "(no description)", caption_font)
                description = ""  # already in the panel
            caption = _wrap(draw, _caption(index + 1, shot), caption_font, panel_w, 2)
            lines = [(line, INK) for line in caption] + [
                (line, MUTED) for line in _wrap(draw, description, caption_font, panel_w, 2 - len(caption))
            ]
            for i, (line, colour) in enumerate(lines):
                draw.text((x, y + panel_h + 8 + i * line_h), line, font=caption_font, fill=colour)
        col = (col + 1) % params.columns
        row += col == 0
        progress((index + 1) / max(1, len(shots)))

    footer = _font(18)
    for number, page in enumerate(pages, start=1):
        ImageDraw.Draw(page).text(
            (width - MARGIN, footer_top), f"{number} / {len(pages)}", font=footer, fill=MUTED, anchor="ra"
        )
    png, pdf = io.BytesIO(), io.BytesIO()
    pages[0].save(png, "PNG", dpi=(DPI, DPI))
    pages[0].save(pdf, "PDF", resolution=float(DPI), save_all=True, append_images=pages[1:])
    return png.getvalue(), pdf.getvalue()


def _header(
    draw: ImageDraw.ImageDraw,
    state: dict[str, Any],
    scene: dict[str, Any],
    params: StoryboardParams,
    *,
    first: bool,
    width: int,
) -> int:
    """Draw the page header; returns the y where the panels start."""
    story = state.get("story", {})
    project = str(state.get("meta", {}).get("name") or "")
    title = str(scene.get("title") or params.scene)
    inner = width - 2 * MARGIN
    y = MARGIN
    if not first:
        small = _font(22)
        running = " · ".join(part for part in (project, f"{title} (continued)") if part)
        draw.text((MARGIN, y), _wrap(draw, running, small, inner, 1)[0], font=small, fill=MUTED)
        y += _line_height(small) + 12
    else:
        for text, font, colour in _header_lines(story, scene, project, title):
            for line in _wrap(draw, text, font, inner, 2):
                draw.text((MARGIN, y), line, font=font, fill=colour)
                y += _line_height(font)
            y += 6
        synopsis = str(scene.get("synopsis") or "").strip()
        if params.include_synopsis and synopsis:
            body = _font(20)
            y += 6
            for line in _wrap(draw, synopsis, body, inner, 8):
                draw.text((MARGIN, y), line, font=body, fill=INK)
                y += _line_height(body)
    draw.line((MARGIN, y + 8, width - MARGIN, y + 8), fill=BORDER, width=2)
    return y + 8 + GAP


def _header_lines(
    story: dict[str, Any], scene: dict[str, Any], project: str, title: str
) -> Iterator[tuple[str, Font, tuple[int, int, int]]]:
    if project:
        yield project, _font(22), MUTED
    yield title, _font(40), INK
    act = _name(story.get("acts", {}), scene.get("act"))
    beat = _name(story.get("beats", {}), scene.get("beat"))
    placement = " · ".join(part for part in (act, beat) if part)
    if placement:
        yield placement, _font(22), MUTED


def _name(items: Any, item_id: Any) -> str:
    if not item_id or not isinstance(items, dict):
        return ""
    item = items.get(item_id)
    return str(item.get("name") or item_id) if isinstance(item, dict) else str(item_id)


def _caption(number: int, shot: dict[str, Any]) -> str:
    parts = [f"Shot {number}"]
    if shot.get("camera"):
        parts.append(str(shot["camera"]))
    duration = shot.get("duration_s")
    if isinstance(duration, int | float) and not isinstance(duration, bool):
        parts.append(f"{duration:g} s")
    return " · ".join(parts)


def _in_folder(root: Path) -> Callable[[str], Path | None]:
    base = root.resolve()

    def find(rel: str) -> Path | None:
        path = (base / rel).resolve()
        return path if path.is_relative_to(base) and path.is_file() else None

    return find


def _take_image(
    takes: dict[str, Any],
    files: Callable[[str], Path | None],
    scene_id: str,
    shot_id: str,
    size: tuple[int, int],
) -> Image.Image | None:
    """The newest readable take image of the shot, cover-fit to ``size``; None when there is none."""
    candidates = [
        (str(take.get("created", "")), take_id, take)
        for take_id, take in takes.items()
        if isinstance(take, dict)
        and take.get("shot") == shot_id
        and take.get("scene", scene_id) == scene_id
        and isinstance(take.get("path"), str)
    ]
    for _, _, take in sorted(candidates, key=lambda c: (c[0], c[1]), reverse=True):
        path = files(take["path"])
        if path is None:
            continue
        try:
            with Image.open(path) as source:
                source.draft("RGB", size)
                image = ImageOps.exif_transpose(source).convert("RGBA")
        except (OSError, ValueError, Image.DecompressionBombError):
            continue
        flat = Image.new("RGB", image.size, PAPER)
        flat.paste(image, mask=image.getchannel("A"))
        return ImageOps.fit(flat, size, Image.Resampling.LANCZOS)
    return None


def _text_panel(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], text: str, font: Font) -> None:
    """A neutral panel with ``text`` wrapped and centred in it."""
    draw.rectangle(box, fill=PANEL, outline=BORDER, width=1)
    pad = 16
    line_h = _line_height(font)
    max_lines = max(1, (box[3] - box[1] - 2 * pad) // line_h)
    lines = _wrap(draw, text, font, box[2] - box[0] - 2 * pad, max_lines)
    y = (box[1] + box[3] - len(lines) * line_h) // 2
    for line in lines:
        draw.text(((box[0] + box[2]) // 2, y), line, font=font, fill=MUTED, anchor="ma")
        y += line_h


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: Font, width: int, max_lines: int) -> list[str]:
    """``text`` broken into at most ``max_lines`` lines no wider than ``width`` (an ellipsis if cut)."""

    def fits(s: str) -> bool:
        return draw.textlength(s, font=font) <= width

    lines: list[str] = []
    current = ""
    for word in text.split():
        while not fits(word):  # a word wider than the line is split by characters
            if current:
                lines.append(current)
                current = ""
            cut = next((i for i in range(len(word) - 1, 0, -1) if fits(word[:i])), 1)
            lines.append(word[:cut])
            word = word[cut:]
        candidate = f"{current} {word}" if current else word
        if fits(candidate):
            current = candidate
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    if max_lines < 1:
        return []
    if len(lines) > max_lines:
        last = lines[max_lines - 1]
        while last and not fits(last + "…"):
            last = last[:-1]
        lines = [*lines[: max_lines - 1], last.rstrip() + "…"]
    return lines


@functools.cache
def _font(size: int) -> Font:
    return ImageFont.load_default(size=size)


def _line_height(font: Font) -> int:
    box = font.getbbox("Hgjy")
    return int(box[3]) + max(4, int(box[3]) // 4)
