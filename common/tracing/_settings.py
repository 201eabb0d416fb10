"""The standard OpenTelemetry settings aob reads: the OTLP endpoint turns tracing on (no ``AOB_`` prefix)."""

from __future__ import annotations

from urllib.parse import unquote

from pydantic import BaseModel, Field, SecretStr

# What an agent program is given of the worker's OpenTelemetry settings (its environment is otherwise clean).
_AGENT_VARIABLES = ("OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG")


class TracingFields(BaseModel):
    """OpenTelemetry traces: exported over OTLP/HTTP when an endpoint is set; off (and free) otherwise. The OTel SDK
    reads the other standard variables itself (``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_BSP_*``, ...)."""

    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT",
        description="OTLP/HTTP collector base URL (traces go to its /v1/traces); unset: no tracing at all",
    )
    otel_exporter_otlp_traces_endpoint: str | None = Field(
        default=None,
        validation_alias="OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        description="full OTLP/HTTP traces URL, instead of the base URL",
    )
    otel_exporter_otlp_headers: SecretStr | None = Field(
        default=None,
        validation_alias="OTEL_EXPORTER_OTLP_HEADERS",
        description="key=value,... headers of every export (the worker relays agent spans with them too)",
    )
    otel_sdk_disabled: bool = Field(
        default=False, validation_alias="OTEL_SDK_DISABLED", description="true: no tracing even with an endpoint"
    )
    otel_service_name: str | None = Field(
        default=None,
        validation_alias="OTEL_SERVICE_NAME",
        description="service.name of the spans (unset: aob-orchestrator, aob-coordinator, aob-worker-<type>,"
        " aob-agent)",
    )
    otel_resource_attributes: str | None = Field(
        default=None, validation_alias="OTEL_RESOURCE_ATTRIBUTES", description="key=value,... added to every span"
    )
    otel_traces_sampler: str | None = Field(
        default=None,
        validation_alias="OTEL_TRACES_SAMPLER",
        description="sampler name (unset: parentbased_always_on, so a run's trace is kept whole or dropped whole)",
    )
    otel_traces_sampler_arg: str | None = Field(
        default=None, validation_alias="OTEL_TRACES_SAMPLER_ARG", description="the sampler's argument (a ratio)"
    )

    @property
    def traces_url(self) -> str | None:
        """Where spans are posted, or None when tracing is off."""
        if self.otel_sdk_disabled:
            return None
        if self.otel_exporter_otlp_traces_endpoint:
            return self.otel_exporter_otlp_traces_endpoint
        if self.otel_exporter_otlp_endpoint:
            return self.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces"
        return None

    def export_headers(self) -> dict[str, str]:
        """``OTEL_EXPORTER_OTLP_HEADERS`` as a mapping (values URL-decoded, as the SDK reads them)."""
        if self.otel_exporter_otlp_headers is None:
            return {}
        pairs = (part.split("=", 1) for part in self.otel_exporter_otlp_headers.get_secret_value().split(","))
        return {unquote(key).strip(): unquote(value).strip() for key, value in (p for p in pairs if len(p) == 2)}

    def agent_environment(self) -> dict[str, str]:
        """The standard variables an agent program gets so its spans describe it as the services' are described."""
        values = {
            "OTEL_SERVICE_NAME": self.otel_service_name,
            "OTEL_RESOURCE_ATTRIBUTES": self.otel_resource_attributes,
            "OTEL_TRACES_SAMPLER": self.otel_traces_sampler,
            "OTEL_TRACES_SAMPLER_ARG": self.otel_traces_sampler_arg,
        }
        return {name: value for name in _AGENT_VARIABLES if (value := values[name]) is not None}
