from __future__ import annotations

from pathlib import Path

from sync.jsonfile import dumps, read_json, write_json


def test_output_is_deterministic_with_sorted_keys_two_spaces_and_a_newline() -> None:
    text = dumps({"b": 1, "a": {"d": [1, 2], "c": "é"}})
    assert text == '{\n  "a": {\n    "c": "é",\n    "d": [\n      1,\n      2\n    ]\n  },\n  "b": 1\n}\n'
    assert dumps({"a": {"c": "é", "d": [1, 2]}, "b": 1}) == text


def test_integral_floats_are_written_as_integers() -> None:
    # pycrdt hands 30 back as 30.0; the file must still say 30.
    assert (
        dumps({"steps": 30.0, "cfg": 7.5, "big": 1e20})
        == '{\n  "big": 1e+20,\n  "cfg": 7.5,\n  "steps": 30\n}\n'
    )


def test_write_then_read_round_trips(tmp_path: Path) -> None:
    value = {"nodes": {"n1": {"x": 10, "y": -3.25}}}
    write_json(tmp_path / "deep" / "f.json", value)
    assert read_json(tmp_path / "deep" / "f.json") == value
    assert not [p for p in (tmp_path / "deep").iterdir() if p.name.endswith(".tmp")]
