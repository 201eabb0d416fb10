"""One settings class per service process, each read once at its process edge from ``AOB_*`` environment variables.

They all live here so the CLI (every process's edge) can read any of them without importing that service, and
the whole configuration surface reads in one file. A setting two processes read is one ``Annotated`` alias below,
so its name, default and meaning cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from common.errors import ConfigError
from common.hitl_settings import HitlNodeFields
from common.ops_settings import OpsEndpointFields
from common.redis_settings import RedisTopologyFields
from common.tracing import TracingFields

DEFAULT_DENY_PATHS = ("/admin", "/.env", "/.git", "/server-status", "/actuator")
DEFAULT_UI_DIST_DIR = Path(__file__).resolve().parents[1] / "frontend" / "flow-builder" / "dist"
AgentRuntimeName = Literal["process", "docker", "kubernetes"]

# Read by more than one process.
AdminKey = Annotated[
    str | None, Field(default=None, description="bootstrap admin API key of tenant 'default' (aob up generates one)")
]
ApiHost = Annotated[str, Field(default="127.0.0.1", description="orchestrator (REST, SSE, UI) address")]
ApiPort = Annotated[int, Field(default=8080, ge=0, le=65535, description="orchestrator port (0: any free port)")]
FanoutHost = Annotated[str, Field(default="127.0.0.1", description="WebSocket fanout address")]
KeyRecheck = Annotated[
    float,
    Field(default=1.0, gt=0, description="re-check open streams' API keys this often (revocations arrive at once)"),
]
FanoutPort = Annotated[int, Field(default=8081, ge=0, le=65535, description="WebSocket fanout port")]
MaxAgents = Annotated[int, Field(default=5, ge=0, description="agent nodes allowed in one run")]
DlqMaxLen = Annotated[
    int, Field(default=100_000, ge=1, description="wf.dlq keeps about this many newest dead letters (XADD MAXLEN ~)")
]


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class CommonSettings(BaseSettings, TracingFields, RedisTopologyFields):
    """Every process: where state lives, how its keys and tables are named, how it logs and traces."""

    model_config = SettingsConfigDict(env_prefix="AOB_", extra="forbid", frozen=True)

    redis_url: str | None = Field(default=None, description="Redis URL; unset starts an embedded Redis")
    database_url: str | None = Field(default=None, description="Postgres URL; unset starts an embedded one")
    key_prefix: str = Field(default="", description="namespace for every Redis key (one per deployment)")
    db_schema: str = Field(default="public", pattern=r"^[a-z_][a-z0-9_]{0,62}$", description="Postgres schema")
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$", description="least level logged")
    log_json: bool = Field(default=True, description="JSON log lines (false: readable text)")


# Field groups: plain models whose fields a process's settings class takes in, so a long class reads in sections
# (and docs/settings.md shows them so) without another level of settings inheritance.


class RateLimitFields(BaseModel):
    """Request rate limits: per minute, counted together in one script call per request."""

    rate_global_per_min: int = Field(default=6000, ge=1, description="all requests, all tenants")
    rate_tenant_per_min: int = Field(default=3000, ge=1, description="requests per tenant, all its keys together")
    rate_key_per_min: int = Field(default=1200, ge=1, description="requests per API key")


class RunQuotaFields(BaseModel):
    """Run quotas per tenant: run trees (a run and every child run under it) count as a whole; the API and the
    control worker both apply them.
    """

    rate_runs_no_agents_per_min: int = Field(
        default=100, ge=1, description="run starts per key, no agents (child runs count under their starter's key)"
    )
    rate_runs_few_agents_per_min: int = Field(default=20, ge=1, description="run starts per key, 1-2 agents")
    rate_runs_many_agents_per_min: int = Field(default=5, ge=1, description="run starts per key, 3+ agents")
    max_active_runs_per_tenant: int = Field(
        default=100, ge=1, description="runs queued or running at once, child runs included"
    )
    rate_window_s: int = Field(default=60, ge=1, description="length of a rate-limit window")
    child_admission_wait_s: float = Field(
        default=60.0,
        ge=0,
        description="a control node with no child in flight waits this long for a quota, then fails (quota_exceeded)",
    )
    max_map_concurrency: int = Field(default=50, ge=1, le=1_000, description="child runs one map node runs at once")
    max_map_items: int = Field(default=1_000, ge=1, le=100_000, description="items one map node takes")
    max_loop_iterations: int = Field(default=1_000, ge=1, le=10_000, description="iterations one loop node runs")


class DefinitionLimitFields(BaseModel):
    """Workflow definitions: the most one may hold when it is saved or patched into a run (larger: 413)."""

    max_definition_nodes: int = Field(default=1_000, ge=1, description="nodes in one definition")
    max_definition_edges: int = Field(default=5_000, ge=0, description="edges in one definition")
    max_definition_bytes: int = Field(default=1_048_576, ge=1, description="a definition's size as compact JSON")
    max_node_config_bytes: int = Field(default=131_072, ge=1, description="one node's config as compact JSON")


class SecretsFields(BaseModel):
    """The secrets store's encryption keys (the API encrypts, workers decrypt)."""

    secrets_keys: Annotated[tuple[SecretStr, ...], NoDecode] = Field(
        default=(),
        description="comma-separated Fernet keys: the first encrypts, all decrypt (rotation: put a new key first,"
        " run `aob secrets rotate`, then drop the old one); unset = no secrets store; aob up generates one",
    )

    @field_validator("secrets_keys", mode="before")
    @classmethod
    def _parse_keys(cls, value: Any) -> Any:
        return _split_commas(value)


class UiFields(BaseModel):
    """The UI: its built assets, and where browsers find the fanout (``GET /api/v1/config``)."""

    ui_dist_dir: Path = Field(default=DEFAULT_UI_DIST_DIR, description="built flow-builder assets (npm run build)")
    ui_fanout_url: str | None = Field(
        default=None,
        pattern=r"^wss?://",
        description="WebSocket base URL browsers use for the fanout; unset: ws://AOB_FANOUT_HOST:AOB_FANOUT_PORT",
    )
    fanout_host: FanoutHost
    fanout_port: FanoutPort


class NotificationFields(BaseModel):
    """Notifications (docs/notifications.md): webhook retries and reach, the SMTP server, links into the UI."""

    notify_poll_s: float = Field(default=1.0, gt=0, description="how often due notification deliveries are sent")
    notify_retry_base_s: float = Field(default=2.0, gt=0, description="first retry delay; doubles per attempt")
    notify_retry_max_s: float = Field(default=3600.0, gt=0, description="a delivery is retried for this long")
    notify_timeout_s: float = Field(default=10.0, gt=0, description="one webhook request or SMTP session")
    notify_allowlist: Annotated[frozenset[str], NoDecode] = Field(
        default=frozenset(), description="comma-separated host:port webhook targets exempt from the address checks"
    )
    notify_ui_base_url: str = Field(default="http://127.0.0.1:8080", description="public UI base URL (for links)")
    smtp_host: str | None = Field(default=None, description="SMTP server for e-mail notifications; unset: none")
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_from: str = Field(default="aob@localhost", description="sender address of notification e-mails")
    smtp_user: str | None = Field(default=None)
    smtp_password: SecretStr | None = Field(default=None)
    smtp_starttls: bool = Field(default=False, description="upgrade the SMTP session with STARTTLS")

    @field_validator("notify_allowlist", mode="before")
    @classmethod
    def _parse_notify_allowlist(cls, value: Any) -> Any:
        return _split_commas(value)


class ApiSettings(
    CommonSettings, RateLimitFields, RunQuotaFields, DefinitionLimitFields, UiFields, SecretsFields, NotificationFields
):
    """``aob orchestrator``: the REST API, SSE streams and the UI (``aob validate`` reads its definition limits)."""

    api_host: ApiHost
    api_port: ApiPort
    admin_key: AdminKey
    max_body_bytes: int = Field(default=1_048_576, ge=1, description="larger request bodies get 413")
    key_recheck_s: KeyRecheck
    max_agents: MaxAgents
    api_workers: int = Field(
        default=0,
        ge=0,
        description="API processes serving the one address (0: one per core); each keeps its own key and workflow"
        " caches, kept coherent over Redis",
    )
    api_cache_s: float = Field(
        default=0.5,
        ge=0,
        le=1.0,
        description="longest an API process trusts an API key or workflow it looked up (0: ask Postgres every"
        " request); revocations and workflow changes made through the API reach every process at once",
    )


class TemplateFields(BaseModel):
    """Templates and edge conditions: the budget of one evaluation (a node's config, an edge, a run's outputs)."""

    template_max_value_chars: int = Field(
        default=1_000_000, ge=1, description="largest value one operator, method or filter of a template may build"
    )
    template_max_output_chars: int = Field(
        default=16_000_000,
        ge=1,
        description="text and typed results one evaluation may give (above the HTTP node's 10 MiB, so a response"
        " passes through)",
    )
    template_max_steps: int = Field(
        default=100_000, ge=1, description="loop iterations, calls, filters and operators of one evaluation"
    )
    template_max_eval_s: float = Field(default=0.5, gt=0, description="longest one evaluation may run")


class CoordinatorSettings(
    CommonSettings, TemplateFields, RunQuotaFields, SecretsFields, NotificationFields, OpsEndpointFields
):
    """``aob coordinator``: completion signals, timers, the recorder, the event archiver, schedules (whose runs pass
    the run quotas) and notifications."""

    coordinator_heartbeat_s: float = Field(
        default=5.0, gt=0, description="heartbeat period; a coordinator silent for 3 periods is taken over"
    )
    coordinator_block_s: float = Field(default=1.0, gt=0, description="longest wait for a completion signal")
    coordinator_drain_batch: int = Field(default=200, ge=1, description="signals decided and applied together")
    timer_interval_s: float = Field(default=0.1, gt=0, description="delayed tokens and run deadlines checked")
    recorder_batch: int = Field(default=500, ge=1, description="ledger entries written to Postgres at once")
    recorder_reclaim_idle_s: float = Field(
        default=30.0, gt=0, description="ledger entries a dead recorder held this long are taken over"
    )
    hot_retention_s: int = Field(
        default=86_400, ge=1, description="an ended run's Redis state expires this long after Postgres has it"
    )
    reconcile_interval_s: float = Field(
        default=30.0,
        gt=0,
        description="how often live runs Redis lost are rebuilt from Postgres, runs stranded this long started and"
        " patches half done this long settled",
    )
    schedule_poll_s: float = Field(default=0.5, gt=0, description="how often due schedules are looked for")
    schedule_grace_s: float = Field(
        default=15.0,
        gt=0,
        description="a schedule's fire time later than this counts as missed and follows the schedule's catchup",
    )
    max_agents: MaxAgents
    dlq_maxlen: DlqMaxLen


class HttpNodeFields(BaseModel):
    """HTTP nodes (and the agent's ``http_request`` tool): the SSRF guard's allowlist, deny-listed paths and caps."""

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
    def _parse_http_lists(cls, value: Any) -> Any:
        return _split_commas(value)


class AgentNodeFields(BaseModel):
    """Agent nodes: where agents run, which provider they call, their logs, budgets, secrets and container limits."""

    agent_runtime: AgentRuntimeName = Field(default="process", description="process, docker or kubernetes")
    llm_base_url: str = Field(default="https://api.openai.com/v1", description="OpenAI-compatible endpoint")
    llm_api_key: SecretStr = Field(
        default=SecretStr(""), description="provider key; the worker makes its agents' model calls, agents never see it"
    )
    llm_model: str = Field(default="gpt-4o-mini", description="model used when a node names none")
    llm_max_retries: int = Field(default=4, ge=0)
    llm_breaker_threshold: int = Field(default=5, ge=1)
    api_url: str = Field(default="http://127.0.0.1:8080", description="orchestrator URL agents patch runs through")
    agent_log_cap_bytes: int = Field(default=10 * 1024 * 1024, ge=0, description="log bytes stored per execution")
    agent_max_line_bytes: int = Field(default=1024 * 1024, ge=256, description="longer lines are split")
    agent_log_ttl_s: int = Field(default=7 * 86_400, ge=1, description="life of logs:{R}:<node> after the node")
    agent_timeout_grace_s: float = Field(default=10.0, ge=0, description="beyond timeout_s before a kill")
    agent_token_ttl_margin_s: float = Field(default=60.0, ge=0)
    agent_secret_values: Annotated[tuple[SecretStr, ...], NoDecode] = Field(
        default=(), description="comma-separated values redacted from every agent log"
    )
    agent_daily_token_budget: int = Field(default=1_000_000, ge=0, description="tokens per tenant per UTC day")
    agent_max_call_tokens: int = Field(
        default=4096, ge=1, description="reply cap of one model call; a call reserves this plus its prompt's estimate"
    )
    agent_process_user: str | None = Field(
        default=None,
        description="user a root worker runs process agents as; unset = uid 0 without capabilities (see security.md)",
    )
    agent_process_command: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="comma-separated argv of the agent program; unset = python -m workers.agent.program",
    )
    agent_docker_url: str | None = Field(default=None, description="Docker API URL; unset = the environment's")
    agent_docker_image: str = "aob-agent:latest"
    agent_docker_command: Annotated[tuple[str, ...], NoDecode] = ("python3", "-m", "workers.agent.program")
    agent_docker_user: str = Field(default="65534:65534", description="uid:gid of agent containers (never root)")
    agent_docker_memory: str = "512m"
    agent_docker_cpus: float = Field(default=1.0, gt=0)
    agent_docker_mounts: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), description="comma-separated host:container[:ro] bind mounts"
    )
    agent_docker_workdir: str | None = None
    agent_k8s_namespace: str = "default"
    agent_k8s_image: str = "aob-agent:latest"
    agent_k8s_command: Annotated[tuple[str, ...], NoDecode] = ("python3", "-m", "workers.agent.program")
    agent_k8s_ttl_after_finished_s: int = Field(default=300, ge=0)
    agent_k8s_pod_start_timeout_s: float = Field(default=120.0, gt=0)
    agent_k8s_memory: str = "512Mi"
    agent_k8s_cpu: str = "1"
    agent_k8s_run_as_user: int = Field(default=65534, ge=1, description="uid of agent pods (runAsNonRoot)")

    @field_validator(
        "agent_secret_values",
        "agent_process_command",
        "agent_docker_command",
        "agent_docker_mounts",
        "agent_k8s_command",
        mode="before",
    )
    @classmethod
    def _parse_agent_lists(cls, value: Any) -> Any:
        return _split_commas(value)


class ControlNodeFields(BaseModel):
    """Control nodes (sub-workflow, loop, map): nesting cap, and how child-run ends are followed and swept."""

    max_nesting_depth: int = Field(default=5, ge=1, le=50, description="deepest child run (top-level run = 0)")
    control_block_ms: int = Field(default=1000, ge=1, description="how long one read of wf.children waits")
    control_reclaim_idle_s: float = Field(
        default=30.0, gt=0, description="take over child-end records a dead control worker left unacknowledged"
    )
    control_sweep_interval_s: float = Field(
        default=1.0, gt=0, description="how often waiting control nodes are re-checked (ended parents, timeouts)"
    )


class WorkerSettings(
    CommonSettings,
    HttpNodeFields,
    AgentNodeFields,
    HitlNodeFields,
    ControlNodeFields,
    RunQuotaFields,
    TemplateFields,
    SecretsFields,
    OpsEndpointFields,
):
    """``aob worker <type>``: one class for every type; the runtime's settings, then each node type's group."""

    worker_concurrency: int = Field(default=16, ge=1, description="tokens one worker process handles at once")
    visibility_timeout_s: float = Field(
        default=30.0, gt=0, description="a token idle this long is reclaimed from its dead worker"
    )
    max_deliveries: int = Field(default=5, ge=1, description="deliveries before a token goes to wf.dlq")
    dlq_maxlen: DlqMaxLen
    worker_block_ms: int = Field(default=1000, ge=1, description="longest wait for a token")
    cancel_poll_s: float = Field(default=0.5, gt=0, description="how often long handlers check for cancellation")
    shutdown_grace_s: float = Field(default=10.0, ge=0, description="in-flight work may finish this long on SIGTERM")
    inline_output_max_bytes: int = Field(default=16_384, ge=0, description="larger node outputs go to CAS")
    # Control nodes compile and start child runs under the same limit the API applies.
    max_agents: MaxAgents


class FanoutSettings(CommonSettings):
    """``aob fanout``: where it listens, who may connect, and how it streams."""

    fanout_host: FanoutHost
    fanout_port: FanoutPort
    admin_key: AdminKey
    ping_interval_s: float = Field(default=15.0, gt=0, description="WebSocket ping period")
    ping_timeout_s: float = Field(default=20.0, gt=0, description="a connection without pong this long is dropped")
    queue_size: int = Field(default=1000, ge=1, description="events buffered per connection before it must resync")
    reader_block_ms: int = Field(default=1000, ge=1, description="longest XREAD BLOCK of the stream reader")
    reader_batch: int = Field(default=500, ge=1, description="entries read per stream per XREAD")
    backlog_page: int = Field(default=500, ge=1, description="entries per backlog read")
    auth_timeout_s: float = Field(default=10.0, gt=0, description="wait for a first-message token")
    key_recheck_s: KeyRecheck
    pending_run_timeout_s: float = Field(default=300.0, gt=0, description="wait for a run that has not started")
    resync_send_timeout_s: float = Field(default=30.0, gt=0, description="wait to deliver a resync to a slow client")
    write_batch_bytes: int = Field(
        default=65536, ge=1, description="most bytes of pending frames written to one client at once"
    )


S = TypeVar("S", bound=BaseSettings)


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Read ``cls`` from the environment; raise ``ConfigError`` with one line naming the bad variable."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "_".join(str(p) for p in first["loc"]).upper()
        name = name if name.startswith("OTEL_") else "AOB_" + name
        raise ConfigError(f"{name}: {first['msg']} (got {first.get('input')!r})") from None
