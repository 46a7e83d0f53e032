from __future__ import annotations

import pytest

from sync.naming import MAX_FOLDER_BYTES, InvalidName, clean_name, folder_name, with_suffix


@pytest.mark.parametrize(
    ("name", "folder"),
    [
        ("My Film", "My_Film"),
        ("  Nuit américaine  ", "Nuit_américaine"),
        ("東京物語", "東京物語"),
        ("a:b*c?d", "a_b_c_d"),
        ("...hidden", "hidden"),
        ("CON", "CON_project"),
        ("nul.txt", "nul.txt_project"),
        ("tab\there", "tab_here"),
    ],
)
def test_folder_names_are_safe_and_keep_unicode(name: str, folder: str) -> None:
    assert folder_name(name) == folder


def test_folder_name_never_leaves_its_parent() -> None:
    for evil in ["..", ".", "../../etc", "a/../../b", "..\\..\\x", "~/x", "/abs"]:
        folder = folder_name(evil)
        assert "/" not in folder
        assert "\\" not in folder
        assert folder not in ("", ".", "..")


def test_long_names_are_cut_on_a_character_boundary() -> None:
    folder = folder_name("é" * 200)
    assert len(folder.encode()) <= MAX_FOLDER_BYTES
    assert folder == "é" * (MAX_FOLDER_BYTES // 2)
    assert len(with_suffix(folder, 12).encode()) <= MAX_FOLDER_BYTES
    assert with_suffix("My_Film", 2) == "My_Film_2"


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("x" * 121, "121 characters"),
        ("...", "only dots"),
        ("a/b", "'/'"),
        ("a\\b", "'/'"),
        ("bell\x07", "control"),
        (42, "text"),
    ],
)
def test_bad_names_are_refused_with_a_reason(raw: object, words: str) -> None:
    with pytest.raises(InvalidName, match=words):
        clean_name(raw)


def test_good_names_are_trimmed() -> None:
    assert clean_name("  The Lighthouse  ") == "The Lighthouse"
