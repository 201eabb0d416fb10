"""The one root exception of aob and the errors every service shares."""

from __future__ import annotations

from typing import Any


class AobError(Exception):
    """Root of every error aob raises on purpose.

    ``retryable`` travels on the error so a node failure can say whether its retry policy applies.
    """

    code = "aob_error"

    def __init__(self, message: str, *, retryable: bool = False, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.details = details


class ConfigError(AobError):
    """A setting is missing or malformed."""

    code = "config_error"


class ValidationFailed(AobError):
    """A definition, patch or input failed validation; ``errors`` lists every problem found."""

    code = "validation_failed"

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors), details=errors)
        self.errors = errors


class TemplateError(AobError):
    """A template or condition could not be parsed or evaluated."""

    code = "template_error"


class NodeFailed(AobError):
    """A node handler failed; ``retryable`` decides whether the retry policy applies."""

    code = "node_failed"

    def __init__(self, message: str, *, retryable: bool = True, error_type: str = "error") -> None:
        super().__init__(message, retryable=retryable)
        self.error_type = error_type
