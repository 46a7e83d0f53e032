from __future__ import annotations

from pathlib import Path

from sync.jsonfile import dumps, normalize, read_json, write_json


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


def test_the_text_is_the_standard_librarys_whichever_numbers_and_strings_it_holds() -> None:
    # Files written before and after the faster writer must be byte for byte the same.
    import json
    import random

    def reference(value: object) -> str:
        return json.dumps(normalize(value), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    rnd = random.Random(7)
    numbers = [0.0, -0.0, 1e-7, 5e-5, 0.0001, 0.1 + 0.2, 1e15, 9999999999999998.0, 1e16, 1e20, 1e300,
               float("nan"), float("inf"), 2**53 + 0.0, 2**63, 2**64, 2**70, -(2**63) - 1, True, None]  # fmt: skip
    numbers += [rnd.choice([-1, 1]) * 10 ** rnd.uniform(-8, 20) for _ in range(2000)]
    strings = ["", "é", "𝄞", "\u2028", '"q"', "\\", "\n\t\x01\x7f", "<script>"]
    for n in numbers:
        value = {"z": n, "a": [n, {"k": rnd.choice(strings)}], "m": {"x": 1, "y": "ok"}}
        assert dumps(value) == reference(value), n


def test_numbers_json_writes_with_an_exponent_keep_its_form() -> None:
    assert dumps({"big": 1e20, "small": 1e-7}) == '{\n  "big": 1e+20,\n  "small": 1e-07\n}\n'
