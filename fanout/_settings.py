"""Fanout settings: the shared ``FanoutSettings`` plus auth and streaming tuning."""

from __future__ import annotations

from pydantic import Field

from common.settings import FanoutSettings


class FanoutServiceSettings(FanoutSettings):
    """``FanoutSettings`` plus what the WebSocket service needs (env ``AOB_*`` like every setting)."""

    admin_key: str | None = Field(default=None, description="bootstrap admin API key (tenant 'default')")
    ping_interval_s: float = Field(default=15.0, gt=0, description="WebSocket ping period")
    ping_timeout_s: float = Field(default=20.0, gt=0, description="a connection without pong this long is dropped")
    queue_size: int = Field(default=1000, ge=1, description="events buffered per connection before it must resync")
    reader_block_ms: int = Field(default=1000, ge=1, description="longest XREAD BLOCK of the stream reader")
    reader_batch: int = Field(default=500, ge=1, description="entries read per stream per XREAD")
    backlog_page: int = Field(default=500, ge=1, description="entries per backlog read")
    auth_timeout_s: float = Field(default=10.0, gt=0, description="wait for a first-message token")
    pending_run_timeout_s: float = Field(default=300.0, gt=0, description="wait for a run that has not started")
    resync_send_timeout_s: float = Field(default=30.0, gt=0, description="wait to deliver a resync to a slow client")


def fanout_settings(settings: FanoutSettings) -> FanoutServiceSettings:
    """``settings`` as ``FanoutServiceSettings``; fields not given come from the environment or defaults."""
    if isinstance(settings, FanoutServiceSettings):
        return settings
    return FanoutServiceSettings(**settings.model_dump())
