"""Typed objects for what the API returns: Workflow, Agent, Run, Step, Pending and friends.

They are built tolerantly, so that a newer server never breaks an older SDK: a field the SDK
does not know lands in `extra` (and is sent back by `to_dict()`), a missing field takes its
default, a value of an unexpected type is treated as missing. Attribute names are snake_case;
`to_dict()` gives the wire form (`systemPrompt`, ISO 8601 timestamps).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = [
    "NOT_GIVEN",
    "TERMINAL_STATUSES",
    "Agent",
    "ApiKey",
    "HumanInTheLoop",
    "NotGiven",
    "Pending",
    "RespondResult",
    "Run",
    "RunList",
    "Step",
    "Tool",
    "ToolCall",
    "UsageRow",
    "WebhookDelivery",
    "WebhookEndpoint",
    "Workflow",
    "WorkflowPage",
    "WorkflowVersion",
]


class NotGiven:
    """The type of `NOT_GIVEN`: "leave this field alone", as opposed to None ("set it to null").

    `client.workflows.update(id, description=None)` clears the description;
    leaving `description` out (its default is NOT_GIVEN) keeps it.
    """

    _instance: NotGiven | None = None

    def __new__(cls) -> NotGiven:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN = NotGiven()

#: Run statuses after which a run never changes again.
TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})


# --- tolerant readers: a value of the wrong type counts as missing ----------------------------


def _str(value: Any, default: str | None = None) -> Any:
    return value if isinstance(value, str) else default


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _bool(value: Any, default: bool = False) -> bool:
    return value if isinstance(value, bool) else default


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else []


def _opt_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _opt_float(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _opt_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _set(wire: dict[str, Any], **values: Any) -> None:
    """Add the fields an older server did not send only when they are known (round trips)."""
    wire.update({key: value for key, value in values.items() if value is not None})


def _dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _objects(value: Any, parse: Callable[[Mapping[str, Any]], T]) -> list[T]:
    return [parse(item) for item in _list(value) if isinstance(item, Mapping)]


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _wire_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    text = value.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def _extra(data: Mapping[str, Any], known: set[str]) -> dict[str, Any]:
    extra = {k: v for k, v in data.items() if k not in known}
    # A timestamp the SDK could not parse is kept verbatim rather than lost.
    for key in known:
        if key.endswith("_at") and isinstance(data.get(key), str) and _time(data[key]) is None:
            extra[key] = data[key]
    return extra


def _with_extra(wire: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    wire.update(extra)
    return wire


# --- workflows --------------------------------------------------------------------------------


@dataclass
class Agent:
    """One member of a workflow's crew. `model` falls back to the workflow's model."""

    role: str
    system_prompt: str
    model: str | None = None
    tools: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    _KNOWN = frozenset({"role", "systemPrompt", "model", "tools"})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Agent:
        """Build from the API\'s JSON; unknown fields go to `extra`."""
        return cls(
            role=_str(data.get("role"), ""),
            system_prompt=_str(data.get("systemPrompt"), ""),
            model=_str(data.get("model")),
            tools=[t for t in _list(data.get("tools")) if isinstance(t, str)],
            extra=_extra(data, set(cls._KNOWN)),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form the API uses, `extra` fields included."""
        wire: dict[str, Any] = {"role": self.role, "systemPrompt": self.system_prompt}
        if self.model is not None:
            wire["model"] = self.model
        if self.tools:
            wire["tools"] = list(self.tools)
        return _with_extra(wire, self.extra)


@dataclass
class HumanInTheLoop:
    """When a run may pause: agents may ask questions; calls of `approve_tools` need approval."""

    ask_questions: bool = False
    approve_tools: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HumanInTheLoop:
        """Build from the API\'s JSON; unknown fields go to `extra`."""
        return cls(
            ask_questions=_bool(data.get("ask_questions")),
            approve_tools=[t for t in _list(data.get("approve_tools")) if isinstance(t, str)],
            extra=_extra(data, {"ask_questions", "approve_tools"}),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form the API uses, `extra` fields included."""
        wire = {"ask_questions": self.ask_questions, "approve_tools": list(self.approve_tools)}
        return _with_extra(wire, self.extra)


@dataclass
class Tool:
    """A custom tool: the server POSTs the tool input to `url`. Header values come back masked."""

    name: str
    url: str
    description: str = ""
    input_schema: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    _KNOWN = frozenset({"name", "url", "description", "input_schema", "headers"})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Tool:
        """Build from the API\'s JSON; unknown fields go to `extra`."""
        return cls(
            name=_str(data.get("name"), ""),
            url=_str(data.get("url"), ""),
            description=_str(data.get("description"), ""),
            input_schema=_dict(data.get("input_schema")),
            headers={k: v for k, v in _dict(data.get("headers")).items() if isinstance(v, str)},
            extra=_extra(data, set(cls._KNOWN)),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form the API uses, `extra` fields included."""
        wire: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "input_schema": dict(self.input_schema),
            "url": self.url,
        }
        if self.headers:
            wire["headers"] = dict(self.headers)
        return _with_extra(wire, self.extra)


@dataclass
class Workflow:
    """A reusable agent configuration. `status` is `active` or `paused`."""

    id: str
    name: str = ""
    description: str | None = None
    status: str = "active"
    model: str | None = None
    crew: list[Agent] = field(default_factory=list)
    human_in_the_loop: HumanInTheLoop | None = None
    tools: list[Tool] = field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    #: The current definition's version number (1 at create); see `workflows.versions()`.
    version: int | None = None
    #: A locked workflow refuses changes (but `locked` and `status`), restores and deletes.
    locked: bool | None = None
    #: Seconds a run may spend running; None: the server's default.
    max_run_seconds: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    _KNOWN = frozenset(
        {
            "id", "name", "description", "status", "model", "crew",
            "human_in_the_loop", "tools", "created_at", "updated_at",
            "version", "locked", "max_run_seconds",
        }
    )  # fmt: skip

    @property
    def is_paused(self) -> bool:
        """True when runs cannot be triggered (status `paused`)."""
        return self.status == "paused"

    @property
    def max_cost_usd(self) -> float | None:
        """A run's budget in dollars; None: no budget (or a server without budgets)."""
        return _opt_float(self.extra.get("max_cost_usd"))

    @property
    def max_tokens(self) -> int | None:
        """A run's budget in tokens (in + out); None: no budget."""
        return _opt_int(self.extra.get("max_tokens"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Workflow:
        """Build from the API\'s JSON; unknown fields go to `extra`."""
        hitl = data.get("human_in_the_loop")
        return cls(
            id=_str(data.get("id"), ""),
            name=_str(data.get("name"), ""),
            description=_str(data.get("description")),
            status=_str(data.get("status"), "active"),
            model=_str(data.get("model")),
            crew=_objects(data.get("crew"), Agent.from_dict),
            human_in_the_loop=HumanInTheLoop.from_dict(hitl) if isinstance(hitl, Mapping) else None,
            tools=_objects(data.get("tools"), Tool.from_dict),
            created_at=_time(data.get("created_at")),
            updated_at=_time(data.get("updated_at")),
            version=_opt_int(data.get("version")),
            locked=_opt_bool(data.get("locked")),
            max_run_seconds=_opt_int(data.get("max_run_seconds")),
            extra=_extra(data, set(cls._KNOWN)),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form the API uses, `extra` fields included."""
        wire: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "status": self.status,
            "model": self.model,
            "crew": [a.to_dict() for a in self.crew],
            "human_in_the_loop": self.human_in_the_loop.to_dict()
            if self.human_in_the_loop
            else None,
            "tools": [t.to_dict() for t in self.tools],
            "created_at": _wire_time(self.created_at),
        }
        if self.updated_at is not None:
            wire["updated_at"] = _wire_time(self.updated_at)
        _set(wire, version=self.version, locked=self.locked)
        if self.version is not None:  # a server with versions always sends the limit
            wire["max_run_seconds"] = self.max_run_seconds
        return _with_extra(wire, self.extra)


@dataclass
class WorkflowVersion:
    """One immutable definition of a workflow (`workflows.versions()`)."""

    version: int
    model: str | None = None
    crew: list[Agent] = field(default_factory=list)
    human_in_the_loop: HumanInTheLoop | None = None
    tools: list[Tool] = field(default_factory=list)
    max_run_seconds: int | None = None
    created_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    _KNOWN = frozenset(
        {"version", "model", "crew", "human_in_the_loop", "tools", "max_run_seconds", "created_at"}
    )

    @property
    def max_cost_usd(self) -> float | None:
        """A run's budget in dollars in this version; None: no budget."""
        return _opt_float(self.extra.get("max_cost_usd"))

    @property
    def max_tokens(self) -> int | None:
        """A run's budget in tokens (in + out) in this version; None: no budget."""
        return _opt_int(self.extra.get("max_tokens"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorkflowVersion:
        """Build from the API\'s JSON; unknown fields go to `extra`."""
        hitl = data.get("human_in_the_loop")
        return cls(
            version=_int(data.get("version")),
            model=_str(data.get("model")),
            crew=_objects(data.get("crew"), Agent.from_dict),
            human_in_the_loop=HumanInTheLoop.from_dict(hitl) if isinstance(hitl, Mapping) else None,
            tools=_objects(data.get("tools"), Tool.from_dict),
            max_run_seconds=_opt_int(data.get("max_run_seconds")),
            created_at=_time(data.get("created_at")),
            extra=_extra(data, set(cls._KNOWN)),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form the API uses, `extra` fields included."""
        wire: dict[str, Any] = {
            "version": self.version,
            "model": self.model,
            "crew": [a.to_dict() for a in self.crew],
            "human_in_the_loop": self.human_in_the_loop.to_dict()
            if self.human_in_the_loop
            else None,
            "tools": [t.to_dict() for t in self.tools],
            "max_run_seconds": self.max_run_seconds,
            "created_at": _wire_time(self.created_at),
        }
        return _with_extra(wire, self.extra)


# --- runs -------------------------------------------------------------------------------------


@dataclass
class Pending:
    """What a paused run needs: `kind` is `input` (answer `prompt`) or `approval` (approve or
    reject the call of `tool` with `tool_input`; `prompt` summarises it)."""

    kind: str
    prompt: str = ""
    tool: str | None = None
    tool_input: Any = None
    expires_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def is_question(self) -> bool:
        """True when an agent asked a question (answer with action="input")."""
        return self.kind == "input"

    @property
    def is_approval(self) -> bool:
        """True when an action waits for approval (action="approve" or "reject")."""
        return self.kind == "approval"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Pending:
        """Build from the API\'s JSON; unknown fields go to `extra`."""
        return cls(
            kind=_str(data.get("kind"), ""),
            prompt=_str(data.get("prompt"), ""),
            tool=_str(data.get("tool")),
            tool_input=data.get("tool_input"),
            expires_at=_time(data.get("expires_at")),
            extra=_extra(data, {"kind", "prompt", "tool", "tool_input", "expires_at"}),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form the API uses, `extra` fields included."""
        wire: dict[str, Any] = {"kind": self.kind, "prompt": self.prompt}
        if self.tool is not None or self.kind == "approval":
            wire["tool"] = self.tool
            wire["tool_input"] = self.tool_input
        if self.expires_at is not None:
            wire["expires_at"] = _wire_time(self.expires_at)
        return _with_extra(wire, self.extra)


@dataclass
class ToolCall:
    """A tool the agent called during a step; `status` tells whether it ran, waits for
    approval or was declined, and `result` is what the agent got back."""

    id: str
    name: str = ""
    input: Any = None
    status: str = ""
    result: Any = None
    is_error: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    _KNOWN = frozenset(
        {"id", "name", "input", "status", "result", "is_error", "started_at", "finished_at"}
    )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolCall:
        """Build from the API\'s JSON; unknown fields go to `extra`."""
        return cls(
            id=_str(data.get("id"), ""),
            name=_str(data.get("name"), ""),
            input=data.get("input"),
            status=_str(data.get("status"), ""),
            result=data.get("result"),
            is_error=_bool(data.get("is_error")),
            started_at=_time(data.get("started_at")),
            finished_at=_time(data.get("finished_at")),
            extra=_extra(data, set(cls._KNOWN)),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form the API uses, `extra` fields included."""
        wire = {
            "id": self.id,
            "name": self.name,
            "input": self.input,
            "status": self.status,
            "result": self.result,
            "is_error": self.is_error,
            "started_at": _wire_time(self.started_at),
            "finished_at": _wire_time(self.finished_at),
        }
        return _with_extra(wire, self.extra)


@dataclass
class Step:
    """One agent's turn in a run. `output` is None until it finishes (or if it failed)."""

    id: str
    order: int = 0
    role: str = ""
    model: str | None = None
    input: str = ""
    output: str | None = None
    error: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    #: Copied from the source run by a retry or a fork (its output reused, not recomputed).
    forked: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    _KNOWN = frozenset(
        {
            "id", "order", "role", "model", "input", "output", "error",
            "tokens_in", "tokens_out", "started_at", "finished_at", "tool_calls", "forked",
        }
    )  # fmt: skip

    @property
    def cost_usd(self) -> float | None:
        """Dollars for the step's model calls; None when the model's price is unknown."""
        return _opt_float(self.extra.get("cost_usd"))

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish, or None while the step has not finished."""
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Step:
        """Build from the API\'s JSON; unknown fields go to `extra`."""
        return cls(
            id=_str(data.get("id"), ""),
            order=_int(data.get("order")),
            role=_str(data.get("role"), ""),
            model=_str(data.get("model")),
            input=_str(data.get("input"), ""),
            output=_str(data.get("output")),
            error=_str(data.get("error")),
            tokens_in=_int(data.get("tokens_in")),
            tokens_out=_int(data.get("tokens_out")),
            started_at=_time(data.get("started_at")),
            finished_at=_time(data.get("finished_at")),
            tool_calls=_objects(data.get("tool_calls"), ToolCall.from_dict),
            forked=_opt_bool(data.get("forked")),
            extra=_extra(data, set(cls._KNOWN)),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form the API uses, `extra` fields included."""
        wire: dict[str, Any] = {
            "id": self.id,
            "order": self.order,
            "role": self.role,
            "model": self.model,
            "input": self.input,
            "output": self.output,
            "error": self.error,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "started_at": _wire_time(self.started_at),
            "finished_at": _wire_time(self.finished_at),
            "tool_calls": [c.to_dict() for c in self.tool_calls],
        }
        _set(wire, forked=self.forked)
        return _with_extra(wire, self.extra)


@dataclass
class Run:
    """One execution of a workflow on one input.

    `status` is `queued`, `running`, `waiting_input` (see `pending`), `completed`, `failed`
    or `cancelled`. `steps` is None on runs from `runs.list()` (the API omits them there).
    `forked_from` (`{"run_id", "from_step"}`) is set on runs made by `runs.retry()` and
    `runs.fork()`.
    """

    id: str
    workflow_id: str = ""
    status: str = "queued"
    input: str = ""
    output: str | None = None
    error: str | None = None
    total_steps: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    created_at: datetime | None = None
    pending: Pending | None = None
    steps: list[Step] | None = None
    workflow_version: int | None = None
    forked_from: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    _KNOWN = frozenset(
        {
            "id", "workflow_id", "status", "input", "output", "error", "total_steps",
            "tokens_in", "tokens_out", "started_at", "finished_at", "created_at",
            "pending", "steps", "workflow_version", "forked_from",
        }
    )  # fmt: skip

    @property
    def cost_usd(self) -> float | None:
        """Dollars spent on the run's model calls; None when no step's price is known."""
        return _opt_float(self.extra.get("cost_usd"))

    @property
    def is_done(self) -> bool:
        """True once the run has finished for good (completed, failed or cancelled)."""
        return self.status in TERMINAL_STATUSES

    @property
    def is_paused(self) -> bool:
        """True while the run waits for a human (`pending` says for what)."""
        return self.status == "waiting_input"

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish, or None while the run has not finished."""
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Run:
        """Build from the API\'s JSON; unknown fields go to `extra`."""
        pending = data.get("pending")
        steps = data.get("steps")
        return cls(
            id=_str(data.get("id"), ""),
            workflow_id=_str(data.get("workflow_id"), ""),
            status=_str(data.get("status"), "queued"),
            input=_str(data.get("input"), ""),
            output=_str(data.get("output")),
            error=_str(data.get("error")),
            total_steps=_int(data.get("total_steps")),
            tokens_in=_int(data.get("tokens_in")),
            tokens_out=_int(data.get("tokens_out")),
            started_at=_time(data.get("started_at")),
            finished_at=_time(data.get("finished_at")),
            created_at=_time(data.get("created_at")),
            pending=Pending.from_dict(pending) if isinstance(pending, Mapping) else None,
            steps=_objects(steps, Step.from_dict) if isinstance(steps, list) else None,
            workflow_version=_opt_int(data.get("workflow_version")),
            forked_from=_dict(data["forked_from"])
            if isinstance(data.get("forked_from"), Mapping)
            else None,
            extra=_extra(data, set(cls._KNOWN)),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form the API uses, `extra` fields included."""
        wire: dict[str, Any] = {
            "id": self.id,
            "workflow_id": self.workflow_id,
            "status": self.status,
            "input": self.input,
            "output": self.output,
            "error": self.error,
            "total_steps": self.total_steps,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "started_at": _wire_time(self.started_at),
            "finished_at": _wire_time(self.finished_at),
            "created_at": _wire_time(self.created_at),
            "pending": self.pending.to_dict() if self.pending else None,
        }
        if self.workflow_version is not None:  # a server with versions sends both
            wire["workflow_version"] = self.workflow_version
            wire["forked_from"] = self.forked_from
        if self.steps is not None:
            wire["steps"] = [s.to_dict() for s in self.steps]
        return _with_extra(wire, self.extra)


class RunList(list):  # type: ignore[type-arg]
    """A page of runs (a list), newest first; `has_more`: older runs follow (pass the last
    run's id as `after` to get them)."""

    has_more: bool = False


@dataclass
class RespondResult:
    """What `runs.respond()` returns: the run id and its status right after the answer
    (normally `running`)."""

    id: str
    status: str = "running"
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RespondResult:
        """Build from the API\'s JSON; unknown fields go to `extra`."""
        return cls(
            id=_str(data.get("id"), ""),
            status=_str(data.get("status"), "running"),
            extra=_extra(data, {"id", "status"}),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form the API uses, `extra` fields included."""
        return _with_extra({"id": self.id, "status": self.status}, self.extra)


class WorkflowPage(list[Workflow]):
    """A list of workflows that also says whether more follow (`has_more`): what
    `workflows.list(limit=..., after=...)` returns. Without those arguments every workflow
    comes back and `has_more` is False."""

    has_more: bool = False


# --- keys -------------------------------------------------------------------------------------


@dataclass
class ApiKey:
    """An API key of the account: its scope (`read`, `run` or `admin`), the workflows it is
    limited to (None: every workflow), and when it expires, was last used (to the minute) and
    was revoked. `key` is the secret itself: set only on the object `keys.create()` returns."""

    id: str
    scope: str = "admin"
    label: str | None = None
    workflow_ids: list[str] | None = None
    hint: str = ""
    created_at: datetime | None = None
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    key: str | None = field(default=None, repr=False)
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    _FIELDS = frozenset(
        {
            "id",
            "scope",
            "label",
            "workflow_ids",
            "hint",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
            "key",
        }
    )

    @property
    def is_active(self) -> bool:
        """Neither revoked nor expired (by this machine's clock)."""
        expired = self.expires_at is not None and self.expires_at <= datetime.now(UTC)
        return self.revoked_at is None and not expired

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ApiKey:
        """Build from the API's JSON; unknown fields go to `extra`."""
        ids = data.get("workflow_ids")
        return cls(
            id=_str(data.get("id"), ""),
            scope=_str(data.get("scope"), "admin"),
            label=_str(data.get("label")),
            workflow_ids=[i for i in ids if isinstance(i, str)] if isinstance(ids, list) else None,
            hint=_str(data.get("hint"), ""),
            created_at=_time(data.get("created_at")),
            expires_at=_time(data.get("expires_at")),
            last_used_at=_time(data.get("last_used_at")),
            revoked_at=_time(data.get("revoked_at")),
            key=_str(data.get("key")),
            extra=_extra(data, set(cls._FIELDS)),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form the API uses (with `key` only when it is known), `extra` included."""
        wire: dict[str, Any] = {
            "id": self.id,
            "label": self.label,
            "scope": self.scope,
            "workflow_ids": self.workflow_ids,
            "hint": self.hint,
            "created_at": _wire_time(self.created_at),
            "expires_at": _wire_time(self.expires_at),
            "last_used_at": _wire_time(self.last_used_at),
            "revoked_at": _wire_time(self.revoked_at),
        }
        if self.key is not None:
            wire["key"] = self.key
        return _with_extra(wire, self.extra)


#: Durable event types that end a run's stream.
TERMINAL_EVENT_TYPES = frozenset({"run.completed", "run.failed", "run.cancelled"})


@dataclass
class RunEvent:
    """One entry of a run's durable event log (`runs.events()`, `runs.stream()`).

    `type` is `run.queued`, `run.started`, `step.started`, `tool_call.updated`,
    `step.completed`, `step.failed`, `run.waiting_input`, `run.resumed`, `run.completed`,
    `run.failed` or `run.cancelled`; `data` is its payload as the API sends it, and `run`,
    `step` and `tool_call` read it as SDK objects where the type carries one.
    """

    id: int
    run_id: str
    type: str
    created_at: datetime | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def is_terminal(self) -> bool:
        return self.type in TERMINAL_EVENT_TYPES

    @property
    def run(self) -> Run | None:
        """The run, for `run.*` events (`run.resumed` carries it under `data["run"]`)."""
        if not self.type.startswith("run."):
            return None
        data = self.data.get("run") if self.type == "run.resumed" else self.data
        return Run.from_dict(data) if isinstance(data, Mapping) else None

    @property
    def step(self) -> Step | None:
        """The step, for `step.started`, `step.completed` and `step.failed`."""
        return Step.from_dict(self.data) if self.type.startswith("step.") else None

    @property
    def tool_call(self) -> ToolCall | None:
        """The tool call, for `tool_call.updated` (`data["step_id"]`, `data["order"]` say
        whose)."""
        call = self.data.get("tool_call")
        return ToolCall.from_dict(call) if isinstance(call, Mapping) else None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunEvent:
        payload = data.get("data")
        return cls(
            id=_int(data.get("id")),
            run_id=_str(data.get("run_id"), ""),
            type=_str(data.get("type"), ""),
            created_at=_time(data.get("created_at")),
            data=dict(payload) if isinstance(payload, Mapping) else {},
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "run_id": self.run_id,
            "type": self.type,
            "created_at": _wire_time(self.created_at),
            "data": self.data,
        }


@dataclass
class StepDelta:
    """A piece of an agent's answer as the model generates it (`runs.stream()` only; never
    stored, no id). The deltas of a model call concatenate to the text of that call."""

    step_id: str
    order: int
    text: str
    type: str = "step.delta"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepDelta:
        return cls(
            step_id=_str(data.get("step_id"), ""),
            order=_int(data.get("order")),
            text=_str(data.get("text"), ""),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "step_id": self.step_id, "order": self.order, "text": self.text}


# --- webhooks ---------------------------------------------------------------------------------


@dataclass
class WebhookEndpoint:
    """A URL that receives run events, signed (Standard Webhooks). `secret` is only set on the
    object returned by `create` and `rotate_secret`; keep it, the API never shows it again."""

    id: str
    url: str = ""
    events: list[str] = field(default_factory=list)
    workflow_id: str | None = None
    description: str | None = None
    status: str = "enabled"
    secret: str | None = field(default=None, repr=False)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    _KNOWN = frozenset(
        {
            "id", "url", "events", "workflow_id", "description", "status", "secret",
            "created_at", "updated_at",
        }
    )  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WebhookEndpoint:
        """Build from the API's JSON; unknown fields go to `extra`."""
        return cls(
            id=_str(data.get("id"), ""),
            url=_str(data.get("url"), ""),
            events=[e for e in _list(data.get("events")) if isinstance(e, str)],
            workflow_id=_str(data.get("workflow_id")),
            description=_str(data.get("description")),
            status=_str(data.get("status"), "enabled"),
            secret=_str(data.get("secret")),
            created_at=_time(data.get("created_at")),
            updated_at=_time(data.get("updated_at")),
            extra=_extra(data, set(cls._KNOWN)),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form the API uses, `extra` fields included."""
        wire: dict[str, Any] = {
            "id": self.id,
            "url": self.url,
            "events": list(self.events),
            "workflow_id": self.workflow_id,
            "description": self.description,
            "status": self.status,
            "created_at": _wire_time(self.created_at),
            "updated_at": _wire_time(self.updated_at),
        }
        if self.secret is not None:  # only known right after create / rotate_secret
            wire["secret"] = self.secret
        return _with_extra(wire, self.extra)


@dataclass
class WebhookDelivery:
    """One event's delivery to one endpoint: `pending` (attempts on the retry schedule),
    `succeeded` or `failed`. `id` is the `webhook-id` header, the same on every attempt."""

    id: str
    event_type: str = ""
    run_id: str = ""
    status: str = "pending"
    attempts: int = 0
    last_status_code: int | None = None
    last_error: str | None = None
    next_attempt_at: datetime | None = None
    created_at: datetime | None = None
    delivered_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    _KNOWN = frozenset(
        {
            "id", "event_type", "run_id", "status", "attempts", "last_status_code",
            "last_error", "next_attempt_at", "created_at", "delivered_at",
        }
    )  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WebhookDelivery:
        """Build from the API's JSON; unknown fields go to `extra`."""
        code = data.get("last_status_code")
        return cls(
            id=_str(data.get("id"), ""),
            event_type=_str(data.get("event_type"), ""),
            run_id=_str(data.get("run_id"), ""),
            status=_str(data.get("status"), "pending"),
            attempts=_int(data.get("attempts")),
            last_status_code=_int(code) if code is not None else None,
            last_error=_str(data.get("last_error")),
            next_attempt_at=_time(data.get("next_attempt_at")),
            created_at=_time(data.get("created_at")),
            delivered_at=_time(data.get("delivered_at")),
            extra=_extra(data, set(cls._KNOWN)),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form the API uses, `extra` fields included."""
        wire = {
            "id": self.id,
            "event_type": self.event_type,
            "run_id": self.run_id,
            "status": self.status,
            "attempts": self.attempts,
            "last_status_code": self.last_status_code,
            "last_error": self.last_error,
            "next_attempt_at": _wire_time(self.next_attempt_at),
            "created_at": _wire_time(self.created_at),
            "delivered_at": _wire_time(self.delivered_at),
        }
        return _with_extra(wire, self.extra)


# --- usage ------------------------------------------------------------------------------------


@dataclass
class UsageRow:
    """What one workflow's runs used of one model on one UTC day (`usage.retrieve()`).
    `cost_usd` is None when the model's price is unknown."""

    date: str
    workflow_id: str = ""
    model: str = ""
    runs: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    _KNOWN = frozenset(
        {"date", "workflow_id", "model", "runs", "tokens_in", "tokens_out", "cost_usd"}
    )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UsageRow:
        """Build from the API\'s JSON; unknown fields go to `extra`."""
        return cls(
            date=_str(data.get("date"), ""),
            workflow_id=_str(data.get("workflow_id"), ""),
            model=_str(data.get("model"), ""),
            runs=_int(data.get("runs")),
            tokens_in=_int(data.get("tokens_in")),
            tokens_out=_int(data.get("tokens_out")),
            cost_usd=_opt_float(data.get("cost_usd")),
            extra=_extra(data, set(cls._KNOWN)),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form the API uses, `extra` fields included."""
        wire = {
            "date": self.date,
            "workflow_id": self.workflow_id,
            "model": self.model,
            "runs": self.runs,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "cost_usd": self.cost_usd,
        }
        return _with_extra(wire, self.extra)
