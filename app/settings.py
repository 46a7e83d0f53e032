"""Settings from the environment (and ``.env``), validated once at start.

Every variable of CONTRACT.md is here with its default; a bad value stops the studio with a
message that names the variable and what to do.

>>> Settings(PORT=8080).port  # doctest: +SKIP
8080
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _env(name: str) -> AliasChoices:
    return AliasChoices(name, name.lower())


class SettingsError(RuntimeError):
    """Settings that cannot work; the message says which and why."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    workspace_root: Path = Field(Path("data/runtime/workspace"), validation_alias=_env("WORKSPACE_ROOT"))
    data_dir: Path = Field(Path("data/runtime"), validation_alias=_env("STUDIO_DATA_DIR"))
    broker_url: str | None = Field(None, validation_alias=_env("STUDIO_BROKER_URL"))
    models_dir: Path = Field(Path("data/runtime/models"), validation_alias=_env("STUDIO_MODELS_DIR"))
    host: str = Field("127.0.0.1", validation_alias=_env("HOST"))
    port: int = Field(8000, ge=1, le=65535, validation_alias=_env("PORT"))

    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("STUDIO_ALLOWED_HOSTS")
    )
    max_body_bytes: int = Field(2 * 1024**2, ge=1024, validation_alias=_env("STUDIO_MAX_BODY_BYTES"))
    max_upload_bytes: int = Field(2 * 1024**3, ge=1024, validation_alias=_env("STUDIO_MAX_UPLOAD_BYTES"))
    rate_limit_user: float = Field(50.0, gt=0, validation_alias=_env("STUDIO_RATE_LIMIT_USER"))
    rate_limit_ip: float = Field(200.0, gt=0, validation_alias=_env("STUDIO_RATE_LIMIT_IP"))
    rate_limit_auth: float = Field(0.5, gt=0, validation_alias=_env("STUDIO_RATE_LIMIT_AUTH"))
    seed_samples: bool = Field(True, validation_alias=_env("STUDIO_SEED_SAMPLES"))
    trash_days: int = Field(30, ge=0, validation_alias=_env("STUDIO_TRASH_DAYS"))
    pwa_dir: Path = Field(
        Path(__file__).resolve().parents[1] / "pwa" / "build", validation_alias=_env("STUDIO_PWA_DIR")
    )
    log_format: str = Field("json", pattern="^(json|console)$", validation_alias=_env("STUDIO_LOG_FORMAT"))
    # Tasks: attempts for transient failures, the first backoff (doubling each time), and how long
    # a running task's worker may stay silent before it is given up for dead. Workers read the same.
    task_max_attempts: int = Field(3, ge=1, le=20, validation_alias=_env("STUDIO_TASK_MAX_ATTEMPTS"))
    task_retry_base_s: float = Field(2.0, ge=0, le=3600, validation_alias=_env("STUDIO_TASK_RETRY_BASE_S"))
    task_stale_s: float = Field(30.0, ge=1, le=3600, validation_alias=_env("STUDIO_TASK_STALE_S"))
    # The bench.steps task kind (scripts/bench/tasks.py and tests only; never for users).
    bench_tasks: bool = Field(False, validation_alias=_env("STUDIO_BENCH_TASKS"))
    # Workers sign the upload of their results with it (tasks/outputs.py); unset: a secret made
    # on first start in STUDIO_DATA_DIR/worker.secret, which workers on this machine read.
    worker_secret: SecretStr | None = Field(None, validation_alias=_env("STUDIO_WORKER_SECRET"))
    # Where `studio worker` hands results back; unset: http://HOST:PORT of this machine.
    server_url: str | None = Field(None, validation_alias=_env("STUDIO_SERVER_URL"))

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [h.strip().lower() for h in value.split(",") if h.strip()]
        return value

    @field_validator("broker_url")
    @classmethod
    def _check_broker(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("redis://", "rediss://")):
            raise ValueError("use a redis:// or rediss:// URL, or leave it unset for the embedded broker")
        return value

    @field_validator("server_url")
    @classmethod
    def _check_server_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("use the studio's http:// or https:// address, e.g. http://studio.lan:8000")
        return value.rstrip("/")

    @field_validator("worker_secret")
    @classmethod
    def _check_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value() and len(value.get_secret_value()) < 16:
            raise ValueError("use at least 16 characters (e.g. `openssl rand -hex 32`)")
        return value or None

    @model_validator(mode="after")
    def _resolve(self) -> Settings:
        self.workspace_root = self.workspace_root.expanduser().resolve()
        self.data_dir = self.data_dir.expanduser().resolve()
        self.models_dir = self.models_dir.expanduser().resolve()
        return self

    @property
    def db_path(self) -> Path:
        return self.data_dir / "studio.db"

    def host_allowed(self, host: str) -> bool:
        """Whether a request's Host header (port stripped) may reach this studio."""
        if "*" in self.allowed_hosts:
            return True
        local = {"127.0.0.1", "localhost", "::1", "[::1]"}
        return host in local or host in self.allowed_hosts or (host == self.host and self.host != "0.0.0.0")  # noqa: S104

    def prepare_dirs(self) -> None:
        """Create and check the data and workspace folders; raises :class:`SettingsError`."""
        for var, path in (("STUDIO_DATA_DIR", self.data_dir), ("WORKSPACE_ROOT", self.workspace_root)):
            _require_writable_dir(var, path)


def _require_writable_dir(var: str, path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise SettingsError(f"{var}={path} is a file, not a folder: point {var} at a folder.")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise SettingsError(
            f"{var}={path} is not writable ({exc.strerror or exc}): choose a folder this user can write to."
        ) from None


def load_settings(*, prepare: bool = True, **overrides: object) -> Settings:
    """Read and validate the settings; raises :class:`SettingsError` with a readable message.
    ``prepare``: create and check the data and workspace folders (a worker needs neither)."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = err["loc"][0] if err["loc"] else "settings"
            name = str(loc).upper() if str(loc).isupper() or "_" in str(loc) else str(loc)
            got = "[redacted]" if "SECRET" in name.upper() else repr(err.get("input"))
            lines.append(f"{name}: {err['msg']} (got {got})")
        raise SettingsError("Invalid settings:\n  " + "\n  ".join(lines)) from None
    if prepare:
        settings.prepare_dirs()
    return settings


def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
