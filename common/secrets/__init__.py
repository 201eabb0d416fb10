"""The secrets store: encrypted values per tenant (``store``), their keys (``keyring``) and how node configs
refer to them (``references``)."""

from common.secrets.keyring import KEYS_VARIABLE, Keyring, SecretsUnavailable
from common.secrets.references import SECRET_FIELDS, SecretSlots, is_secret_reference
from common.secrets.store import (
    MAX_VALUE_CHARS,
    MIN_VALUE_CHARS,
    SECRET_NAME,
    SECRET_NAME_RULE,
    SecretInfo,
    SecretStore,
)

__all__ = [
    "KEYS_VARIABLE",
    "MAX_VALUE_CHARS",
    "MIN_VALUE_CHARS",
    "SECRET_FIELDS",
    "SECRET_NAME",
    "SECRET_NAME_RULE",
    "Keyring",
    "SecretInfo",
    "SecretSlots",
    "SecretStore",
    "SecretsUnavailable",
    "is_secret_reference",
]
