"""The settings group of the health and metrics endpoint that coordinators and workers serve on request."""

from __future__ import annotations

from pydantic import BaseModel, Field


class OpsEndpointFields(BaseModel):
    """Health and metrics endpoint: ``/healthz``, ``/readyz`` and ``/metrics`` of a coordinator or worker, for
    probes and scrapes (the API and the fanout serve theirs on their own port)."""

    ops_host: str = Field(default="127.0.0.1", description="address of the health and metrics endpoint")
    ops_port: int = Field(
        default=0, ge=0, le=65535, description="port of the health and metrics endpoint (0: not served)"
    )
