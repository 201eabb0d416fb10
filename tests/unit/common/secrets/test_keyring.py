"""The keyring: first key encrypts, every key decrypts, rotation moves tokens to the first key; keys never echoed."""

from __future__ import annotations

import pytest

from common.errors import ConfigError
from common.secrets import Keyring, SecretsUnavailable
from common.settings import WorkerSettings

OLD, NEW = Keyring.generate_key(), Keyring.generate_key()


def test_first_key_encrypts_and_every_key_decrypts() -> None:
    token = Keyring([OLD]).encrypt("value-12345")
    assert "value-12345" not in token
    assert Keyring([NEW, OLD]).decrypt(token) == "value-12345"
    with pytest.raises(SecretsUnavailable, match="does not decrypt"):
        Keyring([NEW]).decrypt(token)


def test_rotate_moves_a_token_to_the_first_key() -> None:
    rotated = Keyring([NEW, OLD]).rotate(Keyring([OLD]).encrypt("value-12345"))
    assert Keyring([NEW]).decrypt(rotated) == "value-12345"


def test_a_malformed_key_is_a_config_error_that_does_not_show_it() -> None:
    with pytest.raises(ConfigError) as caught:
        Keyring([OLD, "not-a-key-but-maybe-a-secret"])
    assert "key 2 of 2" in caught.value.message
    assert "not-a-key" not in caught.value.message


def test_without_keys_nothing_is_encrypted_or_decrypted() -> None:
    keyring = Keyring.from_settings(WorkerSettings())
    assert not keyring.configured
    with pytest.raises(SecretsUnavailable, match="AOB_SECRETS_KEYS is not set"):
        keyring.encrypt("value-12345")


def test_settings_take_comma_separated_keys() -> None:
    keyring = Keyring.from_settings(WorkerSettings(secrets_keys=f"{NEW}, {OLD}"))
    assert keyring.decrypt(Keyring([OLD]).encrypt("value-12345")) == "value-12345"
