"""One test's deployment: the ``AOB_*`` values its processes share, handed out as each process's settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic_settings import BaseSettings

from common.settings import ApiSettings, CoordinatorSettings, FanoutSettings, WorkerSettings

ADMIN_KEY = "aob_test_admin_key"
# A fixed Fernet key (32 bytes, url-safe base64) for the secrets store of test deployments.
SECRETS_KEY = "dGVzdC1zZWNyZXRzLWtleS0wMDAwMDAwMDAwMDAwMDA="
PROCESS_SETTINGS: tuple[type[BaseSettings], ...] = (ApiSettings, CoordinatorSettings, WorkerSettings, FanoutSettings)
_KNOWN = frozenset(name for cls in PROCESS_SETTINGS for name in cls.model_fields)

S = TypeVar("S", bound=BaseSettings)


@dataclass(frozen=True)
class Deployment:
    """Like one environment shared by every process: each process's settings take the values they define."""

    values: Mapping[str, Any]

    def __post_init__(self) -> None:
        unknown = sorted(set(self.values) - _KNOWN)
        if unknown:
            raise TypeError(f"not a setting of any process: {', '.join(unknown)}")

    def replace(self, **values: Any) -> Deployment:
        """This deployment with ``values`` set (each must be a setting of some process)."""
        return Deployment({**self.values, **values})

    def api(self) -> ApiSettings:
        return self._settings(ApiSettings)

    def coordinator(self) -> CoordinatorSettings:
        return self._settings(CoordinatorSettings)

    def worker(self) -> WorkerSettings:
        return self._settings(WorkerSettings)

    def fanout(self) -> FanoutSettings:
        return self._settings(FanoutSettings)

    @property
    def key_prefix(self) -> str:
        return str(self.values["key_prefix"])

    def _settings(self, cls: type[S]) -> S:
        return cls(**{name: value for name, value in self.values.items() if name in cls.model_fields})
