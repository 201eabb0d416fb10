"""The CLI's HTTP client: where the API is and which key to use, and one-line errors from its answers."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from common.errors import AobError

CREDENTIALS_FILE = "credentials.json"
_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ClientConfig:
    """The API's base URL and the key to call it with."""

    url: str
    key: str


def config_path() -> Path:
    """``$XDG_CONFIG_HOME/aob/credentials.json`` (``~/.config`` when unset)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "aob" / CREDENTIALS_FILE


def save_config(config: ClientConfig) -> Path:
    """Store ``config`` readable by the user only (0600); returns the file written."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"url": config.url, "key": config.key}, handle)
    path.chmod(0o600)
    return path


def load_config() -> ClientConfig:
    """``AOB_API_URL``/``AOB_API_KEY`` when set, else the stored credentials; ``AobError`` when neither."""
    url, key = os.environ.get("AOB_API_URL"), os.environ.get("AOB_API_KEY")
    path = config_path()
    if not (url and key) and path.exists():
        try:
            stored = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise AobError(
                f"{path}: expected JSON credentials written by `aob login`, could not read it: {exc}"
            ) from exc
        url, key = url or stored.get("url"), key or stored.get("key")
    if not url or not key:
        raise AobError(
            f"not logged in: run `aob login --url URL --key KEY` or set AOB_API_URL and AOB_API_KEY ({path})"
        )
    return ClientConfig(url.rstrip("/"), key)


class ApiClient:
    """Calls the API; any 4xx/5xx or connection failure becomes an ``AobError`` with one clear line."""

    def __init__(self, config: ClientConfig, *, transport: httpx.BaseTransport | None = None) -> None:
        self.config = config
        self._http = httpx.Client(
            base_url=config.url,
            headers={"Authorization": f"Bearer {config.key}"},
            timeout=_TIMEOUT_S,
            transport=transport,
        )

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """The decoded JSON answer (or text when it is not JSON)."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise AobError(f"{method} {self.config.url}{path}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            raise AobError(_error_line(response))
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return response.text


def _error_line(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
        message = f"{error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        message = response.text[:200] or response.reason_phrase
    return f"{response.status_code} {message}"
