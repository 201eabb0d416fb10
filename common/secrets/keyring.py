"""The keys secrets are encrypted with: Fernet under a MultiFernet, so keys rotate without downtime.

Fernet (from ``cryptography``) is authenticated encryption (AES-128-CBC with HMAC-SHA256) with a versioned,
timestamped token; MultiFernet encrypts with the first key and decrypts with any, and ``rotate`` re-encrypts a
token under the first key. Hand-rolled AES would have to get the same details right.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from common.errors import AobError, ConfigError
from common.settings import SecretsFields

KEYS_VARIABLE = "AOB_SECRETS_KEYS"


class SecretsUnavailable(AobError):
    """No key is configured, or a stored secret does not decrypt with any configured key."""


class Keyring:
    """Encrypts with the first key, decrypts with any; empty when ``AOB_SECRETS_KEYS`` is unset."""

    def __init__(self, keys: Sequence[str]) -> None:
        fernets: list[Fernet] = []
        for index, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.strip().encode()))
            except ValueError:
                # The key itself is never echoed: it is a secret too.
                raise ConfigError(
                    f"{KEYS_VARIABLE}: key {index} of {len(keys)} is not a Fernet key"
                    " (expected 32 url-safe base64-encoded bytes; `aob secrets keygen` makes one)"
                ) from None
        self._fernet = MultiFernet(fernets) if fernets else None

    @classmethod
    def from_settings(cls, settings: SecretsFields) -> Keyring:
        """The keyring of ``AOB_SECRETS_KEYS``; raises ``ConfigError`` for a malformed key."""
        return cls([key.get_secret_value() for key in settings.secrets_keys])

    @property
    def configured(self) -> bool:
        return self._fernet is not None

    def encrypt(self, value: str) -> str:
        """``value`` as a Fernet token under the first key."""
        return self._require().encrypt(value.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        """The value of ``token``; ``SecretsUnavailable`` when no configured key opens it."""
        try:
            return self._require().decrypt(token.encode("ascii")).decode()
        except InvalidToken:
            raise SecretsUnavailable(
                f"a stored secret does not decrypt with any key in {KEYS_VARIABLE} (was its key removed?)"
            ) from None

    def rotate(self, token: str) -> str:
        """``token`` re-encrypted under the first key."""
        try:
            return self._require().rotate(token.encode("ascii")).decode("ascii")
        except InvalidToken:
            raise SecretsUnavailable(
                f"a stored secret does not decrypt with any key in {KEYS_VARIABLE} (was its key removed?)"
            ) from None

    @staticmethod
    def generate_key() -> str:
        """A new random key for ``AOB_SECRETS_KEYS``."""
        return Fernet.generate_key().decode("ascii")

    def _require(self) -> MultiFernet:
        if self._fernet is None:
            raise SecretsUnavailable(f"secrets are not configured: {KEYS_VARIABLE} is not set on this service")
        return self._fernet
