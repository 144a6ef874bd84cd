"""The sans-I/O core shared by the sync and the async client.

Every operation is written once, as a *plan*: a generator that yields what it needs done and
receives the result.

    Send(...)      -> the httpx.Response, or the httpx.HTTPError raised while sending
    Sleep(seconds) -> None
    AskHandler(handler, run) -> whatever the user's pause handler returned

`LoopLlama` drives plans with httpx.Client and time.sleep, `AsyncLoopLlama` with
httpx.AsyncClient and asyncio.sleep (see `_client.py`); retries, the reconciling of an
uncertain respond, polling and the pause loop live here and nowhere else.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, NoReturn, TypeVar
from urllib.parse import quote, urlencode

import httpx

from loopllama.client._exceptions import APIError, APIResponseValidationError, PollTimeoutError
from loopllama.client._retry import (
    Failure,
    Safety,
    failure_from_exception,
    failure_from_response,
    retry_delay,
)
from loopllama.client.types import (
    TERMINAL_STATUSES,
    ApiKey,
    RespondResult,
    Run,
    RunEvent,
    RunList,
    UsageRow,
    WebhookDelivery,
    WebhookEndpoint,
    Workflow,
    WorkflowPage,
    WorkflowVersion,
)

T = TypeVar("T")

#: `poll()` returns as soon as the run reaches one of these.
POLL_STOP_STATUSES = TERMINAL_STATUSES | {"waiting_input"}


# --- what a plan asks its driver to do ---------------------------------------------------------


@dataclass(frozen=True)
class Send:
    method: str
    url: str
    headers: Mapping[str, str]
    json: Any
    timeout: httpx.Timeout


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class AskHandler:
    handler: Callable[[Run], Any]
    run: Run


Action = Send | Sleep | AskHandler
Plan = Generator[Action, Any, T]


# --- configuration and operations -------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    api_key: str
    base_url: str
    timeout: httpx.Timeout
    max_retries: int
    headers: Mapping[str, str] = field(default_factory=dict)

    def send(self, op: Op[Any]) -> Send:
        headers = {
            "Authorization": f"Bearer {self.api_key}",
            "Accept": "application/json",
            **self.headers,
            **op.headers,
        }
        return Send(op.method, self.base_url.rstrip("/") + op.path, headers, op.json, self.timeout)


@dataclass(frozen=True)
class Op(Generic[T]):
    """One API call: where it goes, how to read its `data`, and whether repeating it is safe."""

    method: str
    path: str
    parse: Callable[[Any], T]
    json: Any = None
    safety: Safety = Safety.IDEMPOTENT
    # Added to the error when an uncertain failure is not retried (requests that create).
    not_retried_hint: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    # Reads the whole envelope (`data` and `has_more`) instead of `parse` reading `data`.
    page: Callable[[Any, Mapping[str, Any]], Any] | None = None


def segment(name: str, value: str) -> str:
    """A path segment from an id, refusing empty values (which would hit another route)."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"Expected a non-empty string for `{name}`, got {value!r}")
    return quote(value, safe="")


def _one(parse: Callable[[Mapping[str, Any]], T]) -> Callable[[Any], T]:
    def read(data: Any) -> T:
        if not isinstance(data, Mapping):
            raise TypeError(f"expected an object, got {type(data).__name__}")
        return parse(data)

    return read


def _many(parse: Callable[[Mapping[str, Any]], T]) -> Callable[[Any], list[T]]:
    def read(data: Any) -> list[T]:
        if not isinstance(data, list):
            raise TypeError(f"expected an array, got {type(data).__name__}")
        return [parse(item) for item in data if isinstance(item, Mapping)]

    return read


def _nothing(data: Any) -> None:
    return None


_CREATE_HINT = (
    " It was not retried because it may have reached the server and created {what};"
    " check {check} before sending it again."
)


def list_workflows(limit: int | None = None, after: str | None = None) -> Op[WorkflowPage]:
    query = {k: v for k, v in (("limit", limit), ("after", after)) if v is not None}
    path = "/v1/workflows" + (f"?{urlencode(query)}" if query else "")
    return Op("GET", path, _many(Workflow.from_dict), page=_workflow_page)


def _workflow_page(data: Any, payload: Mapping[str, Any]) -> WorkflowPage:
    page = WorkflowPage(_many(Workflow.from_dict)(data))
    page.has_more = payload.get("has_more") is True
    return page


def create_workflow(body: dict[str, Any]) -> Op[Workflow]:
    hint = _CREATE_HINT.format(what="the workflow", check="workflows.list()")
    return Op("POST", "/v1/workflows", _one(Workflow.from_dict), body, Safety.CREATES, hint)


def retrieve_workflow(workflow_id: str) -> Op[Workflow]:
    path = f"/v1/workflows/{segment('workflow_id', workflow_id)}"
    return Op("GET", path, _one(Workflow.from_dict))


def update_workflow(workflow_id: str, body: dict[str, Any]) -> Op[Workflow]:
    path = f"/v1/workflows/{segment('workflow_id', workflow_id)}"
    return Op("PATCH", path, _one(Workflow.from_dict), body)


def delete_workflow(workflow_id: str) -> Op[None]:
    return Op("DELETE", f"/v1/workflows/{segment('workflow_id', workflow_id)}", _nothing)


def new_idempotency_key() -> str:
    return f"loopllama-sdk-{uuid.uuid4()}"


def _webhook_path(webhook_id: str) -> str:
    return f"/v1/webhooks/{segment('webhook_id', webhook_id)}"


def list_webhooks() -> Op[list[WebhookEndpoint]]:
    return Op("GET", "/v1/webhooks", _many(WebhookEndpoint.from_dict))


def create_webhook(body: dict[str, Any]) -> Op[WebhookEndpoint]:
    hint = _CREATE_HINT.format(what="the endpoint", check="webhooks.list()")
    return Op("POST", "/v1/webhooks", _one(WebhookEndpoint.from_dict), body, Safety.CREATES, hint)


def retrieve_webhook(webhook_id: str) -> Op[WebhookEndpoint]:
    return Op("GET", _webhook_path(webhook_id), _one(WebhookEndpoint.from_dict))


def update_webhook(webhook_id: str, body: dict[str, Any]) -> Op[WebhookEndpoint]:
    return Op("PATCH", _webhook_path(webhook_id), _one(WebhookEndpoint.from_dict), body)


def delete_webhook(webhook_id: str) -> Op[None]:
    return Op("DELETE", _webhook_path(webhook_id), _nothing)


def rotate_webhook_secret(webhook_id: str) -> Op[WebhookEndpoint]:
    # Safe to repeat: the secret that counts is the one in the answer the caller receives.
    path = _webhook_path(webhook_id) + "/rotate_secret"
    return Op("POST", path, _one(WebhookEndpoint.from_dict))


def list_deliveries(webhook_id: str) -> Op[list[WebhookDelivery]]:
    path = _webhook_path(webhook_id) + "/deliveries"
    return Op("GET", path, _many(WebhookDelivery.from_dict))


def redeliver(webhook_id: str, delivery_id: str) -> Op[WebhookDelivery]:
    # Safe to repeat: an extra attempt carries the same webhook-id, which receivers deduplicate.
    path = f"{_webhook_path(webhook_id)}/deliveries/{segment('delivery_id', delivery_id)}/redeliver"
    return Op("POST", path, _one(WebhookDelivery.from_dict))


def create_run(
    workflow_id: str,
    input: str,
    *,
    version: int | None = None,
    idempotency_key: str | None = None,
) -> Op[Run]:
    """Trigger a run. Every call carries an Idempotency-Key (generated unless given), reused
    by the retries of that call: the server answers a repeat with the run the first attempt
    created, so a timeout or a 5xx is retried like any other failure."""
    path = f"/v1/workflows/{segment('workflow_id', workflow_id)}/runs"
    body: dict[str, Any] = {"input": input}
    if version is not None:
        body["version"] = version
    key = idempotency_key or new_idempotency_key()
    return Op(
        "POST",
        path,
        _one(Run.from_dict),
        body,
        Safety.IDEMPOTENT,
        headers={"Idempotency-Key": key},
    )


def _query(**params: Any) -> str:
    given = {k: str(v) for k, v in params.items() if v is not None}
    return ("?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in given.items())) if given else ""


def _run_page(data: Any, payload: Mapping[str, Any]) -> RunList:
    page = RunList(_many(Run.from_dict)(data))
    page.has_more = payload.get("has_more") is True
    return page


def list_runs(
    workflow_id: str | None = None,
    *,
    status: str | None = None,
    limit: int | None = None,
    after: str | None = None,
) -> Op[RunList]:
    """A workflow's runs, or the account's (no `workflow_id`), newest first."""
    if workflow_id is None:
        path = "/v1/runs"
    else:
        path = f"/v1/workflows/{segment('workflow_id', workflow_id)}/runs"
    query = _query(status=status, limit=limit, after=after)
    return Op("GET", path + query, _many(Run.from_dict), page=_run_page)


def retrieve_usage(start: Any = None, end: Any = None) -> Op[list[UsageRow]]:
    """Usage rows for the UTC days `start`..`end` (dates or "YYYY-MM-DD")."""
    query = _query(
        start=start.isoformat() if hasattr(start, "isoformat") else start,
        end=end.isoformat() if hasattr(end, "isoformat") else end,
    )
    return Op("GET", "/v1/usage" + query, _many(UsageRow.from_dict))


def cancel_run(run_id: str) -> Op[Run]:
    return Op("POST", f"/v1/runs/{segment('run_id', run_id)}/cancel", _one(Run.from_dict))


def retry_run(run_id: str) -> Op[Run]:
    hint = _CREATE_HINT.format(what="a new run", check="runs.list()")
    path = f"/v1/runs/{segment('run_id', run_id)}/retry"
    return Op("POST", path, _one(Run.from_dict), None, Safety.CREATES, hint)


def fork_run(run_id: str, from_step: int, input: str | None, use_current_workflow: bool) -> Op[Run]:
    body: dict[str, Any] = {"from_step": from_step}
    if input is not None:
        body["input"] = input
    if use_current_workflow:
        body["use_current_workflow"] = True
    hint = _CREATE_HINT.format(what="a new run", check="runs.list()")
    path = f"/v1/runs/{segment('run_id', run_id)}/fork"
    return Op("POST", path, _one(Run.from_dict), body, Safety.CREATES, hint)


def list_versions(workflow_id: str) -> Op[list[WorkflowVersion]]:
    path = f"/v1/workflows/{segment('workflow_id', workflow_id)}/versions"
    return Op("GET", path, _many(WorkflowVersion.from_dict))


def retrieve_version(workflow_id: str, version: int) -> Op[WorkflowVersion]:
    path = f"/v1/workflows/{segment('workflow_id', workflow_id)}/versions/{int(version)}"
    return Op("GET", path, _one(WorkflowVersion.from_dict))


def restore_version(workflow_id: str, version: int) -> Op[Workflow]:
    # Repeating a restore adds one more identical version: harmless, so retried.
    path = f"/v1/workflows/{segment('workflow_id', workflow_id)}/versions/{int(version)}/restore"
    return Op("POST", path, _one(Workflow.from_dict))


def retrieve_run(run_id: str) -> Op[Run]:
    return Op("GET", f"/v1/runs/{segment('run_id', run_id)}", _one(Run.from_dict))


def list_keys() -> Op[list[ApiKey]]:
    return Op("GET", "/v1/keys", _many(ApiKey.from_dict))


def create_key(body: dict[str, Any]) -> Op[ApiKey]:
    hint = _CREATE_HINT.format(what="a key", check="keys.list()")
    return Op("POST", "/v1/keys", _one(ApiKey.from_dict), body, Safety.CREATES, hint)


def revoke_key(key_id: str) -> Op[None]:
    return Op("DELETE", f"/v1/keys/{segment('key_id', key_id)}", _nothing)


def list_events(run_id: str, after: int, limit: int) -> Op[list[RunEvent]]:
    path = f"/v1/runs/{segment('run_id', run_id)}/events?after={int(after)}&limit={int(limit)}"
    return Op("GET", path, _many(RunEvent.from_dict))


def events(cfg: Config, run_id: str, after: int, page_size: int) -> Plan[list[RunEvent]]:
    """Every event after `after`, oldest first, one page of `page_size` at a time."""
    found: list[RunEvent] = []
    while True:
        page = yield from request(cfg, list_events(run_id, after, page_size))
        found += page
        if len(page) < page_size:
            return found
        after = page[-1].id


def respond_body(
    action: str, input: str | None = None, reason: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"action": action}
    if input is not None:
        body["input"] = input
    if reason is not None:
        body["reason"] = reason
    return body


# --- plans ------------------------------------------------------------------------------------


def _read_data(op: Op[T], response: httpx.Response) -> T:
    if response.status_code == 204 or not response.content:
        return op.parse(None)
    try:
        payload = response.json()
        if not isinstance(payload, Mapping) or "data" not in payload:
            raise TypeError("no `data` in the answer")
        if op.page is not None:
            return op.page(payload["data"], payload)
        return op.parse(payload["data"])
    except (ValueError, TypeError) as exc:
        raise APIResponseValidationError(
            f"Unexpected answer to {op.method} {op.path}: {exc}", response=response
        ) from exc


def _failure(outcome: Any) -> Failure:
    if isinstance(outcome, httpx.Response):
        return failure_from_response(outcome)
    return failure_from_exception(outcome)


def _raise(failure: Failure, outcome: Any, hint: str = "") -> NoReturn:
    if hint and failure.maybe_processed:
        failure.error.message += hint
        failure.error.args = (failure.error.message,)
    cause = outcome if isinstance(outcome, BaseException) else None
    raise failure.error from cause


def request(cfg: Config, op: Op[T]) -> Plan[T]:
    """Send `op`, retrying transient failures as far as `op.safety` allows."""
    attempt = 0
    uncertain = False  # an earlier attempt may have done its work on the server
    while True:
        outcome = yield cfg.send(op)
        if isinstance(outcome, httpx.Response) and outcome.status_code < 400:
            return _read_data(op, outcome)
        if (
            uncertain
            and op.method == "DELETE"
            and isinstance(outcome, httpx.Response)
            and outcome.status_code == 404
        ):
            return op.parse(None)  # the earlier attempt deleted it: what the caller wanted
        if (
            uncertain
            and op.path.endswith("/cancel")
            and isinstance(outcome, httpx.Response)
            and outcome.status_code == 409
        ):
            # "Run has already finished": the earlier attempt may have cancelled it.
            run_id = op.path.split("/")[-2]
            return (yield from request(cfg, retrieve_run(run_id)))  # type: ignore[return-value]
        failure = _failure(outcome)
        delay = retry_delay(failure, op.safety, attempt, cfg.max_retries)
        if delay is None:
            _raise(failure, outcome, op.not_retried_hint)
        uncertain = uncertain or failure.maybe_processed
        attempt += 1
        yield Sleep(delay)


_RESPOND_HINT = (
    " The answer may have reached the server: check the run (runs.retrieve) before answering again."
)


def respond(cfg: Config, run_id: str, body: dict[str, Any]) -> Plan[RespondResult]:
    """Answer a paused run, never delivering one answer twice.

    A respond that certainly did not reach the server (no connection, 429) is sent again.
    After an uncertain failure (timeout, hang-up, 5xx) the run is fetched first: if it is no
    longer `waiting_input`, the answer arrived and the run's status is returned; if it still
    waits, the answer is sent again, and a 409 to that resend ("Run is not waiting for input")
    means the first one arrived after all, which also counts as success.
    """
    op = Op(
        "POST",
        f"/v1/runs/{segment('run_id', run_id)}/respond",
        _one(RespondResult.from_dict),
        body,
    )
    attempt = 0
    uncertain = False
    while True:
        outcome = yield cfg.send(op)
        if isinstance(outcome, httpx.Response) and outcome.status_code < 400:
            return _read_data(op, outcome)
        if uncertain and isinstance(outcome, httpx.Response) and outcome.status_code == 409:
            run = yield from request(cfg, retrieve_run(run_id))
            return RespondResult(id=run.id, status=run.status)
        failure = _failure(outcome)
        delay = retry_delay(failure, Safety.IDEMPOTENT, attempt, cfg.max_retries)
        if delay is None:
            _raise(failure, outcome, _RESPOND_HINT)
        attempt += 1
        yield Sleep(delay)
        if failure.maybe_processed:
            try:
                run = yield from request(cfg, retrieve_run(run_id))
            except APIError:
                _raise(failure, outcome, _RESPOND_HINT)
            if not run.is_paused:
                return RespondResult(id=run.id, status=run.status)
            uncertain = True


def poll(cfg: Config, run_id: str, interval: float, timeout: float | None) -> Plan[Run]:
    """Fetch the run every `interval` seconds until it completes, fails or pauses."""
    if interval < 0:
        raise ValueError("`interval` must be >= 0")
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        run = yield from request(cfg, retrieve_run(run_id))
        if run.status in POLL_STOP_STATUSES:
            return run
        wait = interval
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PollTimeoutError(
                    f"Run {run.id} is still {run.status} after {timeout:g}s; it goes on on the"
                    " server: poll it again later.",
                    run=run,
                )
            wait = min(interval, remaining)
        yield Sleep(wait)


def answer_to_kwargs(answer: Any) -> dict[str, Any] | None:
    """Read a pause handler's answer: respond's keyword arguments, a str (the answer to a
    question), or None (stop driving and return the paused run)."""
    if answer is None:
        return None
    if isinstance(answer, str):
        return {"action": "input", "input": answer}
    if isinstance(answer, Mapping):
        return dict(answer)
    raise TypeError(
        "on_pause must return respond()'s keyword arguments as a dict (e.g. "
        f"{{'action': 'approve'}}), a str answer, or None; got {type(answer).__name__}"
    )


def create_and_poll(
    cfg: Config,
    workflow_id: str,
    input: str,
    on_pause: Callable[[Run], Any] | None,
    interval: float,
    timeout: float | None,
    version: int | None = None,
) -> Plan[Run]:
    """Trigger a run and drive it to the end, asking `on_pause` at every pause."""
    run = yield from request(cfg, create_run(workflow_id, input, version=version))
    while True:
        run = yield from poll(cfg, run.id, interval, timeout)
        if not run.is_paused or on_pause is None:
            return run
        kwargs = answer_to_kwargs((yield AskHandler(on_pause, run)))
        if kwargs is None:
            return run
        yield from respond(cfg, run.id, respond_body(**kwargs))
