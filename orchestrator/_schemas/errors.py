"""The one error shape of every 4xx and 5xx answer (``orchestrator._errors``), as the document shows it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    """What went wrong: a machine ``code``, a ``message`` saying what and where, and ``details``."""

    code: str = Field(description="e.g. validation_failed, not_found, conflict, rate_limited")
    message: str
    details: Any = Field(description="free-form: the failing paths and messages, the ids involved, or null")


class ErrorBody(BaseModel):
    """The body of every error answer."""

    error: ErrorDetail


# For every operation: FastAPI then leaves out its own 422 shape, which this API never sends.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorBody, "description": "refused: the error says what and where"},
    "5XX": {"model": ErrorBody, "description": "failed or not ready"},
}
