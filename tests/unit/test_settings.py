from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import SettingsError, load_settings


def test_defaults_match_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("WORKSPACE_ROOT", "STUDIO_DATA_DIR", "STUDIO_BROKER_URL", "HOST", "PORT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    s = load_settings()
    assert s.workspace_root == Path("data/runtime/workspace").resolve()
    assert s.data_dir == Path("data/runtime").resolve()
    assert s.broker_url is None
    assert (s.host, s.port) == ("127.0.0.1", 8000)


def test_a_workspace_root_that_is_a_file_is_refused_by_name(tmp_path: Path) -> None:
    afile = tmp_path / "not-a-folder"
    afile.write_text("x")
    with pytest.raises(SettingsError, match=r"WORKSPACE_ROOT=.*is a file"):
        load_settings(WORKSPACE_ROOT=afile, STUDIO_DATA_DIR=tmp_path / "data")
    assert afile.read_text() == "x"


@pytest.mark.parametrize(
    ("var", "value", "words"),
    [
        ("PORT", "eighty", "PORT"),
        ("PORT", "70000", "PORT"),
        ("STUDIO_BROKER_URL", "amqp://x", "redis://"),
        ("STUDIO_LOG_FORMAT", "xml", "STUDIO_LOG_FORMAT"),
        ("STUDIO_SERVER_URL", "studio.lan:8000", "STUDIO_SERVER_URL.*http://"),
        ("STUDIO_WORKER_SECRET", "short", "STUDIO_WORKER_SECRET.*16 characters"),
    ],
)
def test_bad_values_name_the_variable(tmp_path: Path, var: str, value: str, words: str) -> None:
    with pytest.raises(SettingsError, match=words):
        load_settings(**{var: value, "STUDIO_DATA_DIR": tmp_path / "d", "WORKSPACE_ROOT": tmp_path / "w"})


def test_a_refused_worker_secret_is_not_printed(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(
            STUDIO_WORKER_SECRET="hunter2", STUDIO_DATA_DIR=tmp_path / "d", WORKSPACE_ROOT=tmp_path / "w"
        )
    assert "hunter2" not in str(refused.value)
    assert "[redacted]" in str(refused.value)


def test_env_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PORT", raising=False)
    (tmp_path / ".env").write_text("PORT=8123\nWORKSPACE_ROOT=ws\n")
    s = load_settings()
    assert s.port == 8123
    assert s.workspace_root == tmp_path / "ws"
    assert (tmp_path / "ws").is_dir()
