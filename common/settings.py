"""Typed settings, read once at each process edge from ``AOB_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.errors import ConfigError


class CommonSettings(BaseSettings):
    """Settings every service shares: where state lives and how it is named."""

    model_config = SettingsConfigDict(env_prefix="AOB_", extra="forbid", frozen=True)

    redis_url: str | None = Field(default=None, description="Redis URL; unset starts an embedded Redis")
    database_url: str | None = Field(default=None, description="Postgres URL; unset starts an embedded one")
    data_dir: Path = Field(default=Path("./.aob"), description="embedded servers' data and logs")
    key_prefix: str = Field(default="", description="namespace for every Redis key (one per deployment)")
    db_schema: str = Field(default="public", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    log_json: bool = True
    inline_output_max_bytes: int = Field(default=16_384, ge=0)


class EngineSettings(CommonSettings):
    """Coordinator and worker tuning."""

    coordinator_heartbeat_s: float = Field(default=5.0, gt=0)
    coordinator_block_s: float = Field(default=1.0, gt=0)
    coordinator_drain_batch: int = Field(default=200, ge=1)
    timer_interval_s: float = Field(default=0.1, gt=0)
    worker_concurrency: int = Field(default=16, ge=1)
    visibility_timeout_s: float = Field(default=30.0, gt=0)
    max_deliveries: int = Field(default=5, ge=1)
    worker_block_ms: int = Field(default=1000, ge=1)
    cancel_poll_s: float = Field(default=0.5, gt=0)
    shutdown_grace_s: float = Field(default=10.0, ge=0)
    recorder_batch: int = Field(default=500, ge=1)
    recorder_reclaim_idle_s: float = Field(default=30.0, gt=0)
    max_agents: int = Field(default=5, ge=0)


class ApiSettings(EngineSettings):
    """Orchestrator (REST, SSE, UI) settings."""

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8080, ge=0, le=65535)
    admin_key: str | None = None
    max_body_bytes: int = Field(default=1_048_576, ge=1)


class FanoutSettings(CommonSettings):
    """WebSocket fanout settings."""

    fanout_host: str = "127.0.0.1"
    fanout_port: int = Field(default=8081, ge=0, le=65535)


S = TypeVar("S", bound=BaseSettings)


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Read ``cls`` from the environment; raise ``ConfigError`` with one line naming the bad variable."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "AOB_" + "_".join(str(p) for p in first["loc"]).upper()
        raise ConfigError(f"{name}: {first['msg']} (got {first.get('input')!r})") from None
