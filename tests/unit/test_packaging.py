"""The repository as a newcomer meets it: README, Makefile, CI entry, Docker files, CLI docs."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_top_level_layout_is_exactly_the_architecture() -> None:
    expected = {"app", "pwa", "sync", "tasks", "scripts", "data", "tests", "pyproject.toml", "Dockerfile",
                "compose.yaml", "Makefile", "README.md", ".ci", ".env.example", "requirements.lock",
                "requirements-gpu.lock"}  # fmt: skip
    tracked = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True, check=True
    ).stdout
    top = {line.split("/")[0] for line in tracked.splitlines()} - {".gitignore", ".dockerignore"}
    assert top == expected


def test_readme_opens_with_the_two_commands() -> None:
    head = "\n".join((ROOT / "README.md").read_text().splitlines()[:15])
    assert "make run" in head
    assert "make test" in head
    assert "http://127.0.0.1:8000" in head


def test_ci_runs_exactly_make_test() -> None:
    lines = [ln for ln in (ROOT / ".ci/run").read_text().splitlines() if ln and not ln.startswith("#")]
    assert "make test" in lines


def test_make_help_lists_every_target_the_spec_names() -> None:
    out = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    listed = set(re.findall(r"make (\S+)", out))
    spec = {
        "run",
        "test",
        "build",
        "up",
        "down",
        "logs",
        "new-project",
        "shell-backend",
        "shell-frontend",
        "up-with-comfyui",
    }
    assert spec | {"lint", "fmt", "bench", "help"} <= listed


def test_every_cli_command_is_documented() -> None:
    from app.cli import COMMANDS

    readme = (ROOT / "README.md").read_text()
    for command in COMMANDS:
        assert f"studio {command}" in readme, command


def test_every_contract_variable_is_in_env_example_and_settings() -> None:
    from app.settings import Settings

    example = (ROOT / ".env.example").read_text()
    aliases = {
        str(c) for f in Settings.model_fields.values() for c in getattr(f.validation_alias, "choices", [])
    }
    for var in (
        "WORKSPACE_ROOT",
        "STUDIO_DATA_DIR",
        "STUDIO_BROKER_URL",
        "STUDIO_MODELS_DIR",
        "HOST",
        "PORT",
    ):
        assert var in example, var
        assert var in aliases, var


def test_compose_runs_studio_worker_and_redis_from_one_image() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"studio", "worker", "redis"} <= set(services)
    assert services["studio"]["build"] == "."
    assert services["worker"]["command"][:2] == ["studio", "worker"]
    assert services["studio"]["environment"]["STUDIO_BROKER_URL"].startswith("redis://redis:")
    dockerfile = (ROOT / "Dockerfile").read_text()
    # The image is built by the same installer as `make run`.
    assert "scripts/setup.sh python" in dockerfile
    assert "scripts/setup.sh pwa" in dockerfile
    compose_cli = shutil.which("docker-compose")
    if compose_cli:  # Debian's docker-compose validates the file without an engine
        subprocess.run([compose_cli, "-f", str(ROOT / "compose.yaml"), "config", "-q"], check=True)
