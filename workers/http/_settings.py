"""Settings of the ``http`` worker: the SSRF guard's allowlist, deny-listed paths and caps."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from common.settings import EngineSettings

DEFAULT_DENY_PATHS = ("/admin", "/.env", "/.git", "/server-status", "/actuator")


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return frozenset(part.strip() for part in value.split(",") if part.strip())
    return value


class HttpWorkerSettings(EngineSettings):
    """Worker settings plus the HTTP node's guard: ``AOB_HTTP_ALLOWLIST=127.0.0.1:8000,api.internal:443``."""

    http_allowlist: Annotated[frozenset[str], NoDecode] = Field(
        default=frozenset(), description="comma-separated host:port pairs exempt from the address checks"
    )
    http_deny_paths: Annotated[frozenset[str], NoDecode] = Field(
        default=frozenset(DEFAULT_DENY_PATHS), description="comma-separated path prefixes never requested"
    )
    http_max_response_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    http_max_redirects: int = Field(default=5, ge=0)
    http_max_connections: int = Field(default=100, ge=1)

    @field_validator("http_allowlist", "http_deny_paths", mode="before")
    @classmethod
    def _parse_list(cls, value: Any) -> Any:
        return _split_commas(value)
