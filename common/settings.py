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
    db_schema: str = Field(default="public", pattern=r"^[a-z_][a-z0-9_]{0,62}$", description="Postgres schema")
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$", description="least level logged")
    log_json: bool = Field(default=True, description="JSON log lines (false: readable text)")
    inline_output_max_bytes: int = Field(default=16_384, ge=0, description="larger node outputs go to CAS")


class EngineSettings(CommonSettings):
    """Coordinator and worker tuning."""

    coordinator_heartbeat_s: float = Field(
        default=5.0, gt=0, description="heartbeat period; a coordinator silent for 3 periods is taken over"
    )
    coordinator_block_s: float = Field(default=1.0, gt=0, description="longest wait for a completion signal")
    coordinator_drain_batch: int = Field(default=200, ge=1, description="signals decided and applied together")
    timer_interval_s: float = Field(default=0.1, gt=0, description="delayed tokens and run deadlines checked")
    worker_concurrency: int = Field(default=16, ge=1, description="tokens one worker process handles at once")
    visibility_timeout_s: float = Field(
        default=30.0, gt=0, description="a token idle this long is reclaimed from its dead worker"
    )
    max_deliveries: int = Field(default=5, ge=1, description="deliveries before a token goes to wf.dlq")
    worker_block_ms: int = Field(default=1000, ge=1, description="longest wait for a token")
    cancel_poll_s: float = Field(default=0.5, gt=0, description="how often long handlers check for cancellation")
    shutdown_grace_s: float = Field(default=10.0, ge=0, description="in-flight work may finish this long on SIGTERM")
    recorder_batch: int = Field(default=500, ge=1, description="ledger entries written to Postgres at once")
    recorder_reclaim_idle_s: float = Field(
        default=30.0, gt=0, description="ledger entries a dead recorder held this long are taken over"
    )
    max_agents: int = Field(default=5, ge=0, description="agent nodes allowed in one run")


class ApiSettings(EngineSettings):
    """Orchestrator (REST, SSE, UI) settings."""

    api_host: str = Field(default="127.0.0.1", description="orchestrator (REST, SSE, UI) address")
    api_port: int = Field(default=8080, ge=0, le=65535, description="orchestrator port (0: any free port)")
    admin_key: str | None = Field(default=None, description="bootstrap admin API key (aob up generates one)")
    max_body_bytes: int = Field(default=1_048_576, ge=1, description="larger request bodies get 413")


class FanoutSettings(CommonSettings):
    """WebSocket fanout settings."""

    fanout_host: str = Field(default="127.0.0.1", description="WebSocket fanout address")
    fanout_port: int = Field(default=8081, ge=0, le=65535, description="WebSocket fanout port")


S = TypeVar("S", bound=BaseSettings)


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Read ``cls`` from the environment; raise ``ConfigError`` with one line naming the bad variable."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "AOB_" + "_".join(str(p) for p in first["loc"]).upper()
        raise ConfigError(f"{name}: {first['msg']} (got {first.get('input')!r})") from None
