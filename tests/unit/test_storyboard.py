"""The printable storyboard of a scene (tasks/storyboard.py)."""

import io
import itertools
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops
from pydantic import ValidationError

from sync.model import apply_sample, apply_template, empty_state
from sync.templates import all_samples, get_template
from tasks.storyboard import MARGIN, Cancelled, StoryboardParams, render_storyboard

SCENE = "tide-tables"  # three shots in the short-film sample, act-1 / opening
RED = (255, 0, 0)


def sample_state() -> dict[str, Any]:
    sample = next(s for s in all_samples() if s["id"] == "short-film")
    state = empty_state(uuid="u-1", name=sample["name"], template=sample["template"], created="2025-01-01")
    apply_template(state, get_template(sample["template"]))
    return apply_sample(state, sample)


def first_shot(state: dict[str, Any], scene: str = SCENE) -> str:
    shots = state["story"]["scenes"][scene]["shots"]
    return str(min(shots, key=lambda s: shots[s]["order"]))


def pdf_pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?!s)", pdf))


def red_box(png: bytes) -> tuple[int, int, int, int] | None:
    """The bounding box of the pure red pixels of the PNG."""
    r, g, b = Image.open(io.BytesIO(png)).convert("RGB").split()
    mask = ImageChops.multiply(r.point(lambda v: 255 * (v == 255)), g.point(lambda v: 255 * (v == 0)))
    return ImageChops.multiply(mask, b.point(lambda v: 255 * (v == 0))).getbbox()


def put_take(state: dict[str, Any], root: Path, take_id: str, rel: str, **fields: Any) -> None:
    state["takes"][take_id] = {"node": "n1", "path": rel, **fields}
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (640, 360), RED).save(path)


def test_png_and_pdf_are_valid_a4_pages(tmp_path: Path) -> None:
    png, pdf = render_storyboard(sample_state(), tmp_path, StoryboardParams(scene=SCENE))
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    assert image.size == (1240, 1754)
    assert round(image.info["dpi"][0]) == 150
    assert pdf.startswith(b"%PDF")
    assert pdf_pages(pdf) == 1


def test_letter_page_size(tmp_path: Path) -> None:
    png, _ = render_storyboard(sample_state(), tmp_path, StoryboardParams(scene=SCENE, page="Letter"))
    assert Image.open(io.BytesIO(png)).size == (1275, 1650)


def test_take_image_fills_its_shot_panel(tmp_path: Path) -> None:
    state = sample_state()
    assert red_box(render_storyboard(state, tmp_path, StoryboardParams(scene=SCENE))[0]) is None
    put_take(state, tmp_path, "t1", "03_Renders/main/n1/take_0001.png", scene=SCENE, shot=first_shot(state))
    png, _ = render_storyboard(state, tmp_path, StoryboardParams(scene=SCENE, columns=3))
    box = red_box(png)
    assert box is not None
    panel_w = (1240 - 2 * MARGIN - 2 * 28) // 3
    assert abs(box[0] - MARGIN) <= 1  # the first panel, top left of the grid
    assert abs((box[2] - box[0]) - panel_w) <= 2
    assert abs((box[3] - box[1]) - panel_w * 9 // 16) <= 2
    centre = ((box[0] + box[2]) // 2, (box[1] + box[3]) // 2)
    assert Image.open(io.BytesIO(png)).convert("RGB").getpixel(centre) == RED


def test_takes_that_cannot_be_shown_fall_back_to_the_description(tmp_path: Path) -> None:
    state = sample_state()
    shot = first_shot(state)
    root = tmp_path / "project"
    root.mkdir()
    state["takes"]["missing"] = {"node": "n1", "path": "03_Renders/none.png", "shot": shot}
    put_take(state, root, "other-scene", "03_Renders/other.png", scene="empty-chair", shot=shot)
    put_take(state, root, "escapes", "../outside.png", shot=shot)
    assert (tmp_path / "outside.png").is_file()
    (root / "03_Renders/broken.png").write_bytes(b"not an image")
    state["takes"]["broken"] = {"node": "n1", "path": "03_Renders/broken.png", "shot": shot}
    png, _ = render_storyboard(state, root, StoryboardParams(scene=SCENE))
    assert red_box(png) is None


def test_progress_rises_to_one(tmp_path: Path) -> None:
    seen: list[float] = []
    render_storyboard(sample_state(), tmp_path, StoryboardParams(scene=SCENE), progress=seen.append)
    assert len(seen) == 3
    assert all(a < b for a, b in itertools.pairwise(seen))
    assert seen[-1] == 1.0


def test_cancelling_between_panels_raises(tmp_path: Path) -> None:
    seen: list[float] = []
    with pytest.raises(Cancelled):
        render_storyboard(
            sample_state(),
            tmp_path,
            StoryboardParams(scene=SCENE),
            progress=seen.append,
            cancelled=lambda: len(seen) >= 1,
        )
    assert seen == [pytest.approx(1 / 3)]


def test_unknown_scene_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="The scene 'no-such-scene' does not exist in this project"):
        render_storyboard(sample_state(), tmp_path, StoryboardParams(scene="no-such-scene"))


def test_scene_without_shots_gets_one_placeholder_page(tmp_path: Path) -> None:
    state = sample_state()
    state["story"]["scenes"][SCENE]["shots"] = {}
    seen: list[float] = []
    png, pdf = render_storyboard(state, tmp_path, StoryboardParams(scene=SCENE), progress=seen.append)
    assert Image.open(io.BytesIO(png)).size == (1240, 1754)
    assert pdf_pages(pdf) == 1
    assert seen == [1.0]


def test_many_shots_make_several_pdf_pages(tmp_path: Path) -> None:
    state = sample_state()
    state["story"]["scenes"][SCENE]["shots"] = {
        f"s{i:02d}": {"description": f"Shot {i} " * 30, "camera": "Wide", "duration_s": 2.5, "order": i}
        for i in range(20)
    }
    counts = {}
    for columns in (1, 2, 6):
        png, pdf = render_storyboard(state, tmp_path, StoryboardParams(scene=SCENE, columns=columns))
        assert Image.open(io.BytesIO(png)).size == (1240, 1754)  # the PNG is the first page
        counts[columns] = pdf_pages(pdf)
    assert counts[1] > counts[2] > counts[6] >= 1
    assert counts[2] >= 2


def test_params_are_validated_and_described() -> None:
    with pytest.raises(ValidationError):
        StoryboardParams(scene="")
    with pytest.raises(ValidationError):
        StoryboardParams(scene=SCENE, columns=7)
    with pytest.raises(ValidationError):
        StoryboardParams.model_validate({"scene": SCENE, "page": "A3"})
    schema = StoryboardParams.model_json_schema()
    assert schema["required"] == ["scene"]
    assert all(field.get("description") for field in schema["properties"].values())
