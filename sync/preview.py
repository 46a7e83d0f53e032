"""A preview image per project: its newest render, or a generated placeholder until one exists.

Previews are cached in the project's ``05_Cache/`` (ignored by Git), keyed by what they show, so
a rename or a new render makes a new one and nothing is committed.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

SIZE = (640, 360)
RENDER_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}


def preview_png(root: Path, name: str, project_id: str) -> bytes:
    """PNG bytes of the project's preview (see module docstring)."""
    render = newest_render(root)
    key_src = f"{render}:{render.stat().st_mtime_ns}" if render else f"placeholder:{name}:{project_id}"
    key = hashlib.sha256(key_src.encode()).hexdigest()[:16]
    cache = root / "05_Cache" / "previews" / f"{key}.png"
    if cache.exists():
        return cache.read_bytes()
    data = _thumbnail(render) if render else placeholder(name, project_id)
    cache.parent.mkdir(parents=True, exist_ok=True)
    for old in cache.parent.glob("*.png"):
        old.unlink(missing_ok=True)
    cache.write_bytes(data)
    return data


def newest_render(root: Path) -> Path | None:
    renders = root / "03_Renders"
    if not renders.is_dir():
        return None
    images = [p for p in renders.rglob("*") if p.suffix.lower() in RENDER_SUFFIXES and p.is_file()]
    return max(images, key=lambda p: p.stat().st_mtime_ns, default=None)


def placeholder(name: str, project_id: str) -> bytes:
    """A calm two-colour gradient, seeded by the project id, with the project's initials."""
    digest = hashlib.sha256(project_id.encode()).digest()
    top = (40 + digest[0] % 80, 40 + digest[1] % 80, 60 + digest[2] % 100)
    bottom = (10 + digest[3] % 40, 10 + digest[4] % 40, 20 + digest[5] % 50)
    img = Image.new("RGB", SIZE)
    draw = ImageDraw.Draw(img)
    for y in range(SIZE[1]):
        t = y / (SIZE[1] - 1)
        colour = tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        draw.line([(0, y), (SIZE[0], y)], fill=colour)
    initials = "".join(w[0] for w in name.split()[:2]).upper() or "?"
    font = ImageFont.load_default(size=120)
    box = draw.textbbox((0, 0), initials, font=font)
    left = (SIZE[0] - (box[2] - box[0])) / 2 - box[0]
    top_y = (SIZE[1] - (box[3] - box[1])) / 2 - box[1]
    draw.text((left, top_y), initials, font=font, fill=(235, 235, 240))
    return _png(img)


def _thumbnail(path: Path) -> bytes:
    with Image.open(path) as source:
        img = source.convert("RGB")
    img.thumbnail(SIZE)
    return _png(img)


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()
