"""The project state as a pycrdt document: round trips, Text fields, minimal updates, merges."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text

from sync.docmodel import TOP_LEVEL, apply_state, describe_changes, doc_to_state, is_text, state_to_doc
from sync.jsonfile import normalize
from sync.model import apply_sample, apply_template, empty_state
from sync.templates import all_samples, get_template

State = dict[str, Any]


def sample_state(sample: dict[str, Any]) -> State:
    state = empty_state(
        uuid=f"uuid-{sample['id']}",
        name=sample["name"],
        template=sample["template"],
        created="2026-01-10T10:00:00Z",
        description=sample.get("description", ""),
    )
    apply_template(state, get_template(sample["template"]))
    return apply_sample(state, sample)


def short_film() -> State:
    (sample,) = [s for s in all_samples() if s["id"] == "short-film"]
    state = sample_state(sample)
    state["assets"] = {
        "a1": {"name": "poster.png", "kind": "image", "path": "p.png", "sha256": "00", "size": 10}
    }
    state["takes"] = {"t1": {"node": "slip-gen", "path": "t1.png", "params": {"steps": 30}, "seed": 1}}
    return state


def replica(doc: Doc[Any]) -> Doc[Any]:
    """A second replica that has received everything ``doc`` holds."""
    other: Doc[Any] = Doc()
    other.apply_update(doc.get_update())
    return other


def exchange(a: Doc[Any], b: Doc[Any]) -> None:
    """Send each replica the updates it is missing."""
    to_b, to_a = a.get_update(b.get_state()), b.get_update(a.get_state())
    b.apply_update(to_b)
    a.apply_update(to_a)


def nodes(doc: Doc[Any]) -> Any:
    return doc.get("canvases", type=Map)["main"]["nodes"]


# --- layout ----------------------------------------------------------------------------------


def test_top_level_types_and_text_fields() -> None:
    assert {
        "meta": Map,
        "canvases": Map,
        "story": Map,
        "assets": Map,
        "takes": Map,
        "chat": Array,
    } == TOP_LEVEL
    for path in [
        ("meta", "description"),
        ("canvases", "main", "nodes", "n1", "params", "text"),
        ("canvases", "c2", "nodes", "n9", "params", "prompt"),
        ("canvases", "c2", "nodes", "n9", "params", "negative"),
        ("story", "logline"),
        ("story", "scenes", "s1", "synopsis"),
        ("story", "scenes", "s1", "shots", "s1-1", "description"),
        ("story", "characters", "mara", "description"),
        ("chat", "0", "text"),
    ]:
        assert is_text(path), path
    for path in [
        ("meta", "name"),
        ("meta",),
        ("canvases", "main", "nodes", "n1", "params", "steps"),
        ("canvases", "main", "nodes", "n1", "params", "text", "x"),
        ("story", "scenes", "s1", "title"),
        ("story", "acts", "act-1", "description"),
        ("chat", "0", "author"),
        ("takes", "t1", "params", "prompt"),
    ]:
        assert not is_text(path), path


@pytest.mark.parametrize("sample", all_samples(), ids=lambda s: s["id"])
def test_samples_round_trip(sample: dict[str, Any]) -> None:
    state = sample_state(sample)
    doc = state_to_doc(state)
    assert doc_to_state(doc) == normalize(state)
    assert doc_to_state(replica(doc)) == normalize(state)
    assert json.dumps(doc_to_state(doc), sort_keys=True) == json.dumps(normalize(state), sort_keys=True)


def test_state_to_doc_is_one_transaction_and_fills_a_given_doc() -> None:
    doc: Doc[Any] = Doc()
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    assert state_to_doc(short_film(), doc) is doc
    assert len(updates) == 1
    assert doc_to_state(doc) == normalize(short_film())


def test_text_fields_are_ytext_and_the_rest_plain_values() -> None:
    doc = state_to_doc(short_film())
    meta, story, chat = doc.get("meta", type=Map), doc.get("story", type=Map), doc.get("chat", type=Array)
    params = nodes(doc)["slip-prompt"]["params"]
    texts = [
        meta["description"],
        params["text"],
        params["negative"],
        story["logline"],
        story["scenes"]["empty-chair"]["synopsis"],
        story["scenes"]["empty-chair"]["shots"]["empty-chair-1"]["description"],
        story["characters"]["mara"]["description"],
        chat[0]["text"],
    ]
    assert all(isinstance(t, Text) for t in texts)
    assert str(params["text"]).startswith("An old man")
    plain = [
        meta["name"],
        nodes(doc)["slip-prompt"]["type"],
        story["scenes"]["empty-chair"]["title"],
        chat[0]["author"],
        story["acts"]["act-1"]["name"],
    ]
    assert all(isinstance(v, str) for v in plain)
    assert isinstance(chat, Array)
    assert isinstance(chat[0], Map)
    assert isinstance(nodes(doc)["slip-gen"]["params"], Map)
    assert isinstance(story["scenes"]["empty-chair"]["shots"], Map)


def test_numbers_and_booleans_keep_their_kind_through_a_doc() -> None:
    state = {"meta": {"fps": 24, "ratio": 2.39, "draft": True, "off": False, "none": None, "neg": -3}}
    state["takes"] = {"t": {"params": {"steps": 30, "guidance": 7.5}, "sizes": [512, 768.0]}}
    back = doc_to_state(replica(state_to_doc(state)))
    assert back["meta"] == {"fps": 24, "ratio": 2.39, "draft": True, "off": False, "none": None, "neg": -3}
    assert type(back["meta"]["fps"]) is int
    assert type(back["meta"]["draft"]) is bool
    assert back["takes"]["t"] == {"params": {"steps": 30, "guidance": 7.5}, "sizes": [512, 768]}
    assert type(back["takes"]["t"]["params"]["steps"]) is int


def test_missing_top_level_types_read_as_empty() -> None:
    empty = {"meta": {}, "canvases": {}, "story": {}, "assets": {}, "takes": {}, "chat": []}
    assert doc_to_state(Doc()) == empty
    doc: Doc[Any] = Doc()
    doc.get("meta", type=Map)["name"] = "Tide"
    assert doc_to_state(doc) == {**empty, "meta": {"name": "Tide"}}
    assert doc_to_state(replica(doc)) == {**empty, "meta": {"name": "Tide"}}  # untyped roots


# --- minimal updates -------------------------------------------------------------------------


def test_applying_the_same_state_changes_nothing() -> None:
    state = short_film()
    doc = state_to_doc(state)
    before = doc.get_state()
    floats = json.loads(json.dumps(state), parse_int=float)  # 30 → 30.0 everywhere
    assert apply_state(doc, floats) is False
    assert apply_state(doc, state) is False
    assert doc.get_state() == before


def test_changing_one_param_touches_only_that_param() -> None:
    state = short_film()
    doc = state_to_doc(state)
    events: list[Any] = []
    origins: list[Any] = []

    def record(evs: list[Any]) -> None:
        events.extend(evs)
        origins.append(evs[0].transaction.origin)  # readable only inside the callback

    _subscription = doc.get("canvases", type=Map).observe_deep(record)  # keep: dropped subscriptions stop
    before = doc.get_state()
    state["canvases"]["main"]["nodes"]["slip-gen"]["params"]["steps"] = 31
    assert apply_state(doc, state, origin="alice") is True
    assert [(e.path, set(e.keys)) for e in events] == [(["main", "nodes", "slip-gen", "params"], {"steps"})]
    assert events[0].keys["steps"]["action"] == "update"
    assert origins == ["alice"]
    assert len(doc.get_update(before)) < 60
    assert doc_to_state(doc) == normalize(state)


def test_text_change_is_a_character_diff() -> None:
    state = short_film()
    doc = state_to_doc(state)
    events: list[Any] = []
    _subscription = doc.get("canvases", type=Map).observe_deep(
        events.extend
    )  # keep: dropped subscriptions stop
    params = state["canvases"]["main"]["nodes"]["slip-prompt"]["params"]
    params["text"] = params["text"].replace("old man", "old fisherman")
    apply_state(doc, state)
    assert [e.path for e in events] == [["main", "nodes", "slip-prompt", "params", "text"]]
    inserted = "".join(d.get("insert", "") for d in events[0].delta)
    assert inserted == "fisher"
    assert doc_to_state(doc) == normalize(state)


def test_text_diff_handles_multibyte_characters() -> None:
    # pycrdt indexes Text by UTF-8 bytes: offsets must be converted from characters.
    state: State = {"meta": {"description": "héllo 😀 wörld, ça va?"}}
    doc = state_to_doc(state)
    other = replica(doc)
    for text in ["héllo 😀😀 wörld, ça va!", "😀 hé wörld ça", "", "ñ🌊ñ", "ñ🌊ñ🌊 naïve"]:
        state["meta"]["description"] = text
        before = other.get_state()
        assert apply_state(doc, state)
        assert doc_to_state(doc)["meta"]["description"] == text
        other.apply_update(doc.get_update(before))
        assert doc_to_state(other)["meta"]["description"] == text


def test_chat_append_keeps_existing_messages() -> None:
    state = short_film()
    doc = state_to_doc(state)
    events: list[Any] = []
    _subscription = doc.get("chat", type=Array).observe_deep(
        events.extend
    )  # keep: dropped subscriptions stop
    new = [{"id": f"m{i}", "author": "You", "role": "user", "text": "hi", "time": "t"} for i in (7, 8)]
    state["chat"] += new
    apply_state(doc, state)
    assert len(events) == 1
    assert events[0].path == []
    assert events[0].delta[0] == {"retain": 6}
    assert len(events[0].delta[1]["insert"]) == 2
    assert doc_to_state(doc) == normalize(state)


def test_streaming_into_the_last_chat_message_edits_its_text_in_place() -> None:
    state = short_film()
    doc = state_to_doc(state)
    events: list[Any] = []
    _subscription = doc.get("chat", type=Array).observe_deep(
        events.extend
    )  # keep: dropped subscriptions stop
    state["chat"][-1]["text"] += " And end on the tide coming in."
    apply_state(doc, state)
    assert [e.path for e in events] == [[5, "text"]]
    assert doc_to_state(doc) == normalize(state)


def test_chat_edit_in_the_middle_and_removal() -> None:
    state = short_film()
    doc = state_to_doc(state)
    state["chat"][2]["text"] = "What is the midpoint?"
    del state["chat"][4]
    state["chat"].insert(0, {"id": "m0", "author": "You", "role": "user", "text": "Hello", "time": "t"})
    assert apply_state(doc, state)
    assert doc_to_state(doc) == normalize(state)
    assert doc_to_state(replica(doc)) == normalize(state)


def test_value_kinds_can_change() -> None:
    state = short_film()
    doc = state_to_doc(state)
    params = state["canvases"]["main"]["nodes"]["slip-prompt"]["params"]
    params["text"] = None  # Text → plain value
    params["negative"] = {"weight": 1}  # Text → Map
    state["story"]["acts"] = []  # Map → Array
    state["meta"]["name"] = ["a", {"b": 2}]
    assert apply_state(doc, state)
    assert doc_to_state(doc) == normalize(state)
    params["text"] = "back again"  # plain → Text
    apply_state(doc, state)
    assert isinstance(nodes(doc)["slip-prompt"]["params"]["text"], Text)


# --- concurrent replicas ---------------------------------------------------------------------


def test_concurrent_edits_of_different_fields_keep_both() -> None:
    base = short_film()
    a = state_to_doc(base)
    b = replica(a)
    state_a, state_b = copy.deepcopy(base), copy.deepcopy(base)
    state_a["canvases"]["main"]["nodes"]["slip-gen"]["x"] = 999
    state_a["canvases"]["main"]["nodes"]["new-note"] = {
        "type": "note",
        "x": 0,
        "y": 0,
        "params": {"text": "hi"},
    }
    state_b["canvases"]["main"]["nodes"]["slip-gen"]["params"]["steps"] = 50
    state_b["story"]["logline"] = "A girl, a tide, a ferryman."
    assert apply_state(a, state_a)
    assert apply_state(b, state_b)
    exchange(a, b)
    expected = copy.deepcopy(state_a)
    expected["canvases"]["main"]["nodes"]["slip-gen"]["params"]["steps"] = 50
    expected["story"]["logline"] = "A girl, a tide, a ferryman."
    assert doc_to_state(a) == doc_to_state(b) == normalize(expected)


def test_concurrent_text_edits_merge_character_by_character() -> None:
    base = short_film()
    a = state_to_doc(base)
    b = replica(a)
    state_a, state_b = copy.deepcopy(base), copy.deepcopy(base)
    path = ("canvases", "main", "nodes", "slip-prompt", "params")
    params_a = state_a[path[0]][path[1]][path[2]][path[3]][path[4]]
    params_b = state_b[path[0]][path[1]][path[2]][path[3]][path[4]]
    original = params_a["text"]
    params_a["text"] = "🌊 A frail old man" + original.removeprefix("An old man")
    params_b["text"] = original.replace("cinematic wide shot", "cinematic wide shot, dusk, ç")
    apply_state(a, state_a)
    apply_state(b, state_b)
    exchange(a, b)
    merged = doc_to_state(a)[path[0]][path[1]][path[2]][path[3]][path[4]]["text"]
    assert merged == "🌊 A frail old man" + original.removeprefix("An old man").replace(
        "cinematic wide shot", "cinematic wide shot, dusk, ç"
    )
    assert doc_to_state(a) == doc_to_state(b)


def test_concurrent_chat_appends_keep_both_messages() -> None:
    base = short_film()
    a = state_to_doc(base)
    b = replica(a)
    state_a, state_b = copy.deepcopy(base), copy.deepcopy(base)
    state_a["chat"].append({"id": "a1", "author": "A", "role": "user", "text": "from A", "time": "t"})
    state_b["chat"].append({"id": "b1", "author": "B", "role": "user", "text": "from B", "time": "t"})
    apply_state(a, state_a)
    apply_state(b, state_b)
    exchange(a, b)
    ids = [m["id"] for m in doc_to_state(a)["chat"]]
    assert ids[:6] == ["m1", "m2", "m3", "m4", "m5", "m6"]
    assert sorted(ids[6:]) == ["a1", "b1"]
    assert doc_to_state(a) == doc_to_state(b)


# --- property test ---------------------------------------------------------------------------

KEYS = st.sampled_from(["a", "b", "text", "prompt", "description", "x", "id", "main", "n1"])
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text("ab é😀\n", max_size=8)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=10,
)
PROSE = st.text("ab é😀", max_size=10)
NODE = st.fixed_dictionaries(
    {"type": st.sampled_from(["prompt", "note"]), "x": st.integers(0, 3)},
    optional={
        "params": st.dictionaries(st.sampled_from(["text", "prompt", "steps"]), PROSE | VALUES, max_size=3)
    },
)
CANVAS = st.fixed_dictionaries({"name": PROSE, "nodes": st.dictionaries(st.sampled_from(["n1", "n2"]), NODE)})
MESSAGE = st.fixed_dictionaries({"id": st.sampled_from(["m1", "m2", "m3"]), "text": PROSE}) | VALUES
STATES = st.fixed_dictionaries(
    {
        "meta": st.dictionaries(st.sampled_from(["name", "description", "x"]), PROSE | VALUES, max_size=3),
        "canvases": st.dictionaries(st.sampled_from(["main", "c2"]), CANVAS, max_size=2),
        "story": st.fixed_dictionaries(
            {"logline": PROSE | VALUES},
            optional={"scenes": st.dictionaries(KEYS, st.dictionaries(KEYS, PROSE | VALUES, max_size=3))},
        ),
        "assets": st.dictionaries(KEYS, VALUES, max_size=3),
        "takes": st.dictionaries(KEYS, VALUES, max_size=2),
        "chat": st.lists(MESSAGE, max_size=4),
    }
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(STATES, STATES)
def test_apply_state_reaches_any_state(s1: State, s2: State) -> None:
    doc = state_to_doc(s1)
    assert doc_to_state(doc) == normalize(s1)
    other = replica(doc)
    before = other.get_state()
    changed = apply_state(doc, s2)
    assert doc_to_state(doc) == normalize(s2)
    other.apply_update(doc.get_update(before))
    assert doc_to_state(other) == normalize(s2)
    assert apply_state(doc, s2) is False
    assert changed == (json.dumps(normalize(s1), sort_keys=True) != json.dumps(normalize(s2), sort_keys=True))


# --- commit messages -------------------------------------------------------------------------


def test_describe_nothing_changed() -> None:
    state = short_film()
    floats = json.loads(json.dumps(state), parse_int=float)
    assert describe_changes(state, copy.deepcopy(state)) == ""
    assert describe_changes(state, floats) == ""


def test_describe_project_and_canvas_changes() -> None:
    old = short_film()
    new = copy.deepcopy(old)
    new["meta"]["name"] = "The Tide Clock"
    new["meta"]["description"] += " More."
    assert describe_changes(old, new) == 'Rename project to "The Tide Clock"; edit project description'
    new = copy.deepcopy(old)
    new["canvases"]["look"] = {"name": "Look", "order": 1, "nodes": {}, "edges": {}}
    new["canvases"]["main"]["name"] = "Shots"
    assert describe_changes(old, new) == 'Add canvas "Look"; rename canvas "Main" to "Shots"'
    assert describe_changes(new, old) == 'Remove canvas "Look"; rename canvas "Shots" to "Main"'


def test_describe_node_changes() -> None:
    old = short_film()
    new = copy.deepcopy(old)
    main = new["canvases"]["main"]["nodes"]
    for nid in ("brief", "slip-gen", "slip-view"):
        main[nid]["x"] += 10
    main["slip-gen"]["params"]["steps"] = 40
    assert describe_changes(old, new) == "Move 3 nodes on Main canvas; set image.diffusion steps to 40"
    main["slip-gen"]["params"]["label"] = "Sampler"
    main["slip-gen"]["params"].pop("steps")
    assert (
        describe_changes(old, new)
        == 'Move 3 nodes on Main canvas; set Sampler label to "Sampler"; clear Sampler steps'
    )
    new = copy.deepcopy(old)
    new["canvases"]["main"]["nodes"]["slip-prompt"]["params"]["text"] = "A new prompt"
    assert describe_changes(old, new) == "Edit prompt text"
    for key in ("steps", "seed", "width", "height"):
        new["canvases"]["main"]["nodes"]["causeway-gen"]["params"][key] = 1
    assert describe_changes(old, new) == "Edit 5 parameters on Main canvas"
    new = copy.deepcopy(old)
    new["canvases"]["main"]["nodes"]["n1"] = {"type": "note", "x": 0, "y": 0, "params": {}}
    new["canvases"]["main"]["nodes"]["n2"] = {"type": "note", "x": 0, "y": 0, "params": {}}
    del new["canvases"]["main"]["nodes"]["brief"]
    assert describe_changes(old, new) == "Add 2 nodes on Main canvas; remove 1 node on Main canvas"


def test_describe_edge_changes() -> None:
    old = short_film()
    new = copy.deepcopy(old)
    edges = new["canvases"]["main"]["edges"]
    edges["e-new"] = {
        "source": "slip-prompt",
        "sourceHandle": "out",
        "target": "causeway-gen",
        "targetHandle": "prompt",
    }
    del edges["e-slip-1"], edges["e-slip-2"]
    assert describe_changes(old, new) == (
        "Connect prompt to image.diffusion on Main canvas; disconnect 2 edges on Main canvas"
    )


def test_describe_story_chat_assets_and_takes() -> None:
    old = short_film()
    new = copy.deepcopy(old)
    story = new["story"]
    story["logline"] = "New logline"
    story["scenes"]["new-scene"] = {"title": "The Last Crossing", "order": 9, "shots": {}}
    story["scenes"]["empty-chair"]["synopsis"] = "Changed."
    story["beats"]["climax"] = {**story["beats"]["climax"], "order": 99}
    new["chat"] += [{"id": "m7", "text": "a"}, {"id": "m8", "text": "b"}]
    new["assets"]["a2"] = {"name": "storyboard.pdf"}
    new["takes"].update({"t2": {"node": "x"}, "t3": {"node": "y"}, "t4": {"node": "z"}})
    assert describe_changes(old, new) == (
        'Edit logline; add scene "The Last Crossing"; edit scene "The Empty Chair"; reorder beats; '
        'add 2 chat messages; add asset "storyboard.pdf"; add 3 takes'
    )
    del new["story"]["scenes"]["empty-chair"], new["story"]["scenes"]["new-scene"]
    new["story"]["acts"]["act-1"]["description"] = "Shorter."
    new["chat"] = new["chat"][:5]
    assert describe_changes(old, new).startswith(
        'Edit logline; remove scene "The Empty Chair"; edit act "Act I"; reorder beats; remove 1 chat message'
    )


def test_describe_is_capped() -> None:
    old = short_film()
    new = copy.deepcopy(old)
    for i in range(30):
        new["canvases"][f"c{i}"] = {"name": f"Canvas number {i}", "order": i + 1, "nodes": {}, "edges": {}}
    message = describe_changes(old, new)
    assert len(message) <= 200
    assert message.startswith('Add canvas "Canvas number 0"; add canvas "Canvas number 1"')
    assert message.endswith("more changes")
    assert "…" in message
    shown = message.count("add canvas") + message.count("Add canvas")
    assert message.endswith(f"… and {30 - shown} more changes")


def test_long_multiline_text_edits_stay_small_and_fast() -> None:
    lines = [f"Line {i}: the tide comes in over the causeway and goes out again.\n" for i in range(3000)]
    state: State = {"story": {"logline": "".join(lines)}}
    a = state_to_doc(state)
    b = replica(a)
    edited_a, edited_b = list(lines), list(lines)
    edited_a[10] = edited_a[10].replace("tide", "cold tide")
    edited_b[2500] = edited_b[2500].replace("goes out", "slips out")
    edited_b[2900] = edited_b[2900].replace("over", "across")
    before = a.get_state()
    apply_state(a, {"story": {"logline": "".join(edited_a)}})
    apply_state(b, {"story": {"logline": "".join(edited_b)}})
    assert len(a.get_update(before)) < 80
    exchange(a, b)
    merged = list(lines)
    merged[10], merged[2500], merged[2900] = edited_a[10], edited_b[2500], edited_b[2900]
    assert doc_to_state(a)["story"]["logline"] == doc_to_state(b)["story"]["logline"] == "".join(merged)


@settings(max_examples=200, deadline=None)
@given(st.text("ab\n😀é", max_size=40), st.text("ab\n😀é", max_size=40))
def test_text_diff_reaches_any_text_on_every_path(old: str, new: str) -> None:
    with pytest.MonkeyPatch.context() as patch:  # force the line-by-line and wholesale paths too
        for limit in (1_000_000, 20, 0):
            patch.setattr("sync.docmodel._DIFF_LIMIT", limit)
            doc = state_to_doc({"meta": {"description": old}})
            other = replica(doc)
            apply_state(doc, {"meta": {"description": new}})
            other.apply_update(doc.get_update())
            assert doc_to_state(doc)["meta"]["description"] == new
            assert doc_to_state(other)["meta"]["description"] == new


def test_describe_meta_and_story_settings() -> None:
    old = short_film()
    new = copy.deepcopy(old)
    new["canvases"]["look"] = {"name": "Look", "order": 1, "nodes": {}, "edges": {}}
    new["meta"]["open_canvas"] = "look"
    new["story"]["template"] = "five-act"
    new["story"]["running_time_min"] = 12
    assert describe_changes(old, new) == (
        'Open canvas "Look"; add canvas "Look"; set running time to 12 min; switch story template to "five-act"'
    )


def test_apply_state_rejects_wrong_top_level_kinds() -> None:
    doc = state_to_doc(short_film())
    with pytest.raises(TypeError, match="chat"):
        apply_state(doc, {**short_film(), "chat": {"m1": {}}})
    with pytest.raises(TypeError, match="meta"):
        apply_state(doc, {**short_film(), "meta": ["x"]})
