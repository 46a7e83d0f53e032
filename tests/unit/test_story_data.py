"""Checks on the story-structure templates and sample projects shipped in data/."""

import json
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "data"
TEMPLATES = DATA / "templates"
SAMPLES = DATA / "samples"

TEMPLATE_IDS = ["blank", "three-act", "five-act", "heros-journey", "save-the-cat"]
SAMPLE_IDS = ["short-film", "pilot"]
PHASES = {"setup", "confrontation", "resolution"}
SEVEN_POINT = [
    ("hook", "Hook"),
    ("plot-turn-1", "Plot Turn 1"),
    ("pinch-1", "Pinch 1"),
    ("midpoint", "Midpoint"),
    ("pinch-2", "Pinch 2"),
    ("plot-turn-2", "Plot Turn 2"),
    ("resolution", "Resolution"),
]
CAMPBELL_STAGES = [
    "The Call to Adventure",
    "Refusal of the Call",
    "Supernatural Aid",
    "The Crossing of the First Threshold",
    "Belly of the Whale",
    "The Road of Trials",
    "The Meeting with the Goddess",
    "Woman as Temptress",
    "Atonement with the Father",
    "Apotheosis",
    "The Ultimate Boon",
    "Refusal of the Return",
    "The Magic Flight",
    "Rescue from Without",
    "The Crossing of the Return Threshold",
    "Master of the Two Worlds",
    "Freedom to Live",
]
SAVE_THE_CAT = [
    ("Opening Image", 1, None),
    ("Theme Stated", 5, None),
    ("Set-Up", 1, 10),
    ("Catalyst", 12, None),
    ("Debate", 12, 25),
    ("Break into Two", 25, None),
    ("B Story", 30, None),
    ("Fun and Games", 30, 55),
    ("Midpoint", 55, None),
    ("Bad Guys Close In", 55, 75),
    ("All Is Lost", 75, None),
    ("Dark Night of the Soul", 75, 85),
    ("Break into Three", 85, None),
    ("Finale", 85, 110),
    ("Final Image", 110, None),
]
NODE_TYPES = {"prompt", "image.diffusion", "image.preview", "note", "scene.ref"}
SCENE_STATUSES = {"idea", "draft", "storyboarded", "final"}
EPS = 1e-6


def load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def template(template_id):
    return load(TEMPLATES / f"{template_id}.json")


def sample(sample_id):
    return load(SAMPLES / f"{sample_id}.json")


def all_data_files():
    return sorted(TEMPLATES.glob("*.json")) + sorted(SAMPLES.glob("*.json"))


def act_spans(tpl):
    spans, start = {}, 0.0
    for act in tpl["acts"]:
        spans[act["id"]] = (start, start + act["share"])
        start += act["share"]
    return spans


def integral_floats(value, where="$"):
    if isinstance(value, float) and value.is_integer():
        return [where]
    if isinstance(value, dict):
        return [hit for k, v in value.items() for hit in integral_floats(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [hit for i, v in enumerate(value) for hit in integral_floats(v, f"{where}[{i}]")]
    return []


# ------------------------------------------------------------------ templates


def test_exactly_the_five_templates_exist():
    assert sorted(p.stem for p in TEMPLATES.glob("*.json")) == sorted(TEMPLATE_IDS)


def test_templates_have_the_common_fields_in_display_order():
    for order, template_id in enumerate(TEMPLATE_IDS):
        tpl = template(template_id)
        assert tpl["id"] == template_id
        assert tpl["order"] == order
        assert tpl["name"].strip()
        assert tpl["description"].strip()
        assert isinstance(tpl["running_time_min"], int)
        assert tpl["running_time_min"] > 0
        for key in ("acts", "plot_points", "beats"):
            assert isinstance(tpl[key], list), (template_id, key)


def test_template_names():
    names = {t: template(t)["name"] for t in TEMPLATE_IDS}
    assert names == {
        "blank": "Blank",
        "three-act": "Classic Three-Act",
        "five-act": "Five-Act Drama (Freytag)",
        "heros-journey": "Hero's Journey",
        "save-the-cat": "Save the Cat!",
    }


def test_blank_is_empty():
    tpl = template("blank")
    assert tpl["acts"] == []
    assert tpl["plot_points"] == []
    assert tpl["beats"] == []


def test_three_act_shares_are_25_50_25():
    tpl = template("three-act")
    assert [a["share"] for a in tpl["acts"]] == [25, 50, 25]
    assert [a["title"] for a in tpl["acts"]] == ["Setup", "Confrontation", "Resolution"]


@pytest.mark.parametrize("template_id", [t for t in TEMPLATE_IDS if t != "blank"])
def test_shares_sum_to_100(template_id):
    acts = template(template_id)["acts"]
    assert acts
    assert all(a["share"] > 0 for a in acts)
    assert abs(sum(a["share"] for a in acts) - 100) <= 0.05


@pytest.mark.parametrize("template_id", TEMPLATE_IDS)
def test_every_act_has_an_allowed_phase(template_id):
    for act in template(template_id)["acts"]:
        assert act["phase"] in PHASES, (template_id, act["id"])
        assert act["name"].strip()
        assert act["title"].strip()
        assert act["description"].strip()


@pytest.mark.parametrize("template_id", [t for t in TEMPLATE_IDS if t != "blank"])
def test_acts_run_from_setup_to_resolution(template_id):
    phases = [a["phase"] for a in template(template_id)["acts"]]
    rank = {"setup": 0, "confrontation": 1, "resolution": 2}
    assert phases[0] == "setup"
    assert phases[-1] == "resolution"
    assert [rank[p] for p in phases] == sorted(rank[p] for p in phases)


@pytest.mark.parametrize("template_id", [t for t in TEMPLATE_IDS if t != "blank"])
def test_seven_point_plot_points_in_order(template_id):
    points = template(template_id)["plot_points"]
    assert [(p["id"], p["name"]) for p in points] == SEVEN_POINT
    positions = [p["position"] for p in points]
    assert positions == sorted(positions)
    assert positions[0] == 0
    assert positions[-1] == 100


def test_five_act_follows_freytag():
    acts = template("five-act")["acts"]
    assert len(acts) == 5
    titles = [a["title"] for a in acts]
    assert titles[:4] == ["Exposition", "Rising Action", "Climax", "Falling Action"]
    assert "Denouement" in titles[4] or "Catastrophe" in titles[4]


def test_heros_journey_has_campbells_17_stages_in_order():
    tpl = template("heros-journey")
    assert [b["name"] for b in tpl["beats"]] == CAMPBELL_STAGES
    assert [a["title"] for a in tpl["acts"]] == ["Departure", "Initiation", "Return"]
    act_of = {b["name"]: b["act"] for b in tpl["beats"]}
    ids = [a["id"] for a in tpl["acts"]]
    assert {act_of[name] for name in CAMPBELL_STAGES[:5]} == {ids[0]}
    assert {act_of[name] for name in CAMPBELL_STAGES[5:11]} == {ids[1]}
    assert {act_of[name] for name in CAMPBELL_STAGES[11:]} == {ids[2]}


def test_save_the_cat_has_snyders_15_beats_on_110_pages():
    tpl = template("save-the-cat")
    assert tpl["running_time_min"] == 110
    beats = tpl["beats"]
    assert [(b["name"], b["page"], b.get("page_end")) for b in beats] == SAVE_THE_CAT
    for b in beats:
        assert b["position"] == round(b["page"] / 110 * 100, 1), b["id"]


def test_save_the_cat_acts_follow_the_page_breaks():
    acts = template("save-the-cat")["acts"]
    assert [a["title"] for a in acts] == ["Thesis", "Antithesis", "Synthesis"]
    for act, pages in zip(acts, (25, 60, 25), strict=True):
        assert abs(act["share"] - pages / 110 * 100) < 0.1, act["id"]


def test_only_save_the_cat_has_pages():
    for template_id in TEMPLATE_IDS:
        if template_id == "save-the-cat":
            continue
        assert all("page" not in b for b in template(template_id)["beats"]), template_id


@pytest.mark.parametrize("template_id", TEMPLATE_IDS)
def test_template_references_resolve(template_id):
    tpl = template(template_id)
    spans = act_spans(tpl)
    assert len(spans) == len(tpl["acts"]), "duplicate act id"
    for key in ("plot_points", "beats"):
        ids = [item["id"] for item in tpl[key]]
        assert len(ids) == len(set(ids)), (template_id, key)
        for item in tpl[key]:
            assert item["act"] in spans, (template_id, item["id"])
            assert item["name"].strip()
            assert item["description"].strip()
            start, end = spans[item["act"]]
            assert 0 <= item["position"] <= 100
            assert start - EPS <= item["position"] <= end + EPS, (template_id, item["id"])


@pytest.mark.parametrize("template_id", ["three-act", "five-act", "heros-journey"])
def test_beats_are_in_story_order(template_id):
    positions = [b["position"] for b in template(template_id)["beats"]]
    assert positions == sorted(positions)


# ------------------------------------------------------------------ determinism


@pytest.mark.parametrize("path", all_data_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_file_is_deterministic_json(path):
    text = path.read_text(encoding="utf-8")
    obj = json.loads(text)
    assert json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n" == text
    assert integral_floats(obj) == []


# ------------------------------------------------------------------ samples


def test_exactly_the_two_samples_exist():
    assert sorted(p.stem for p in SAMPLES.glob("*.json")) == sorted(SAMPLE_IDS)


def test_sample_templates():
    assert sample("short-film")["template"] == "three-act"
    assert sample("pilot")["template"] == "save-the-cat"


@pytest.mark.parametrize("sample_id", SAMPLE_IDS)
def test_sample_is_a_complete_project(sample_id):
    project = sample(sample_id)
    assert project["id"] == sample_id
    for key in ("name", "description", "logline"):
        assert project[key].strip(), key
    assert 3 <= len(project["characters"]) <= 5
    orders = sorted(c["order"] for c in project["characters"].values())
    assert orders == list(range(len(orders)))
    for char in project["characters"].values():
        assert char["name"].strip()
        assert char["description"].strip()


@pytest.mark.parametrize("sample_id", SAMPLE_IDS)
def test_sample_scenes_use_their_templates_structure(sample_id):
    project = sample(sample_id)
    tpl = template(project["template"])
    act_index = {a["id"]: i for i, a in enumerate(tpl["acts"])}
    beat_act = {b["id"]: b["act"] for b in tpl["beats"]}
    point_act = {p["id"]: p["act"] for p in tpl["plot_points"]}
    scenes = sorted(project["scenes"].values(), key=lambda s: s["order"])
    assert [s["order"] for s in scenes] == list(range(len(scenes)))
    for scene in scenes:
        assert scene["act"] in act_index, scene["title"]
        assert scene["status"] in SCENE_STATUSES
        assert scene["title"].strip()
        assert scene["synopsis"].strip()
        if scene["beat"]:
            assert beat_act[scene["beat"]] == scene["act"], scene["title"]
        if scene["plot_point"]:
            assert point_act[scene["plot_point"]] == scene["act"], scene["title"]
    acts_in_order = [act_index[s["act"]] for s in scenes]
    assert acts_in_order == sorted(acts_in_order), "scenes jump back to an earlier act"
    assert set(acts_in_order) == set(act_index.values()), "every act needs at least one scene"


def test_short_film_size():
    assert 6 <= len(sample("short-film")["scenes"]) <= 10


def test_pilot_touches_most_save_the_cat_beats():
    project = sample("pilot")
    assert 10 <= len(project["scenes"]) <= 15
    used = {s["beat"] for s in project["scenes"].values() if s["beat"]}
    assert len(used) >= 10


@pytest.mark.parametrize("sample_id", SAMPLE_IDS)
def test_sample_shots(sample_id):
    shot_ids = []
    for scene in sample(sample_id)["scenes"].values():
        shots = scene["shots"]
        assert 1 <= len(shots) <= 3, scene["title"]
        assert sorted(s["order"] for s in shots.values()) == list(range(len(shots)))
        for shot in shots.values():
            assert shot["description"].strip()
            assert shot["camera"].strip()
            assert isinstance(shot["duration_s"], int)
            assert shot["duration_s"] > 0
        shot_ids.extend(shots)
    assert len(shot_ids) == len(set(shot_ids)), "shot ids must be unique per file"


@pytest.mark.parametrize("sample_id", SAMPLE_IDS)
def test_sample_ids_are_unique(sample_id):
    project = sample(sample_id)
    ids = list(project["characters"]) + list(project["scenes"])
    for scene in project["scenes"].values():
        ids.extend(scene["shots"])
    for canvas in project["canvases"].values():
        ids.extend(canvas["nodes"])
        ids.extend(canvas["edges"])
    ids.extend(m["id"] for m in project["chat"])
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("sample_id", SAMPLE_IDS)
def test_sample_canvas_graph_resolves(sample_id):
    project = sample(sample_id)
    assert "main" in project["canvases"]
    for canvas in project["canvases"].values():
        nodes, edges = canvas["nodes"], canvas["edges"]
        assert 5 <= len(nodes) <= 9
        for node in nodes.values():
            assert node["type"] in NODE_TYPES
            assert isinstance(node["x"], int)
            assert isinstance(node["y"], int)
            if node["type"] == "scene.ref":
                assert node["params"]["scene"] in project["scenes"]
        for edge in edges.values():
            assert edge["source"] in nodes
            assert edge["target"] in nodes
            assert edge["sourceHandle"]
            assert edge["targetHandle"]


@pytest.mark.parametrize("sample_id", SAMPLE_IDS)
def test_sample_canvas_has_a_prompt_to_preview_chain(sample_id):
    canvas = sample(sample_id)["canvases"]["main"]
    nodes, edges = canvas["nodes"], canvas["edges"].values()

    def links(source_type, source_handle, target_type, target_handle):
        return {
            (e["source"], e["target"])
            for e in edges
            if nodes[e["source"]]["type"] == source_type
            and e["sourceHandle"] == source_handle
            and nodes[e["target"]]["type"] == target_type
            and e["targetHandle"] == target_handle
        }

    prompt_to_gen = links("prompt", "out", "image.diffusion", "prompt")
    gen_to_view = links("image.diffusion", "image", "image.preview", "image")
    assert any(gen == g for _, gen in prompt_to_gen for g, _ in gen_to_view)


@pytest.mark.parametrize("sample_id", SAMPLE_IDS)
def test_sample_chat_is_a_writers_room(sample_id):
    chat = sample(sample_id)["chat"]
    assert 4 <= len(chat) <= 8
    assert {m["role"] for m in chat} == {"user", "assistant"}
    for message in chat:
        assert message["text"].strip()
        assert message["author"].strip()
        assert message["time"].endswith("Z")
    times = [m["time"] for m in chat]
    assert times == sorted(times)
