"""`client.runs`: trigger, list, retrieve, respond to, poll, stream, cancel, retry and fork
runs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

import httpx

from loopllama.client import _core
from loopllama.client._stream import StreamState
from loopllama.client.types import RespondResult, Run, RunEvent, RunList, StepDelta

if TYPE_CHECKING:
    from loopllama.client._client import AsyncLoopLlama, LoopLlama

#: `on_pause(run)` returns respond()'s keyword arguments (`{"action": "approve"}`), a str (the
#: answer to a question), or None to stop and get the paused run back.
PauseHandler = Callable[[Run], "dict[str, Any] | str | None"]
AsyncPauseHandler = Callable[[Run], "dict[str, Any] | str | Awaitable[Any] | None"]


class Runs:
    """Runs: executions of a workflow on one input."""

    def __init__(self, client: LoopLlama) -> None:
        self._client = client

    def create(
        self,
        workflow_id: str,
        input: str,
        *,
        version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Run:
        """Trigger a run (202); it starts `queued` and executes in the background.

        Every call sends an `Idempotency-Key` (a fresh one unless `idempotency_key` is given)
        and its retries reuse it, so retrying after a timeout or a 5xx is safe: the server
        answers with the run the first attempt created, never a second run. Pass your own key
        to make a trigger safe across processes or restarts (kept 24 hours by the server).
        `version` pins a version of the workflow (`workflows.versions()`).

        Raises ConflictError if the workflow is paused, NotFoundError if it (or the version)
        does not exist, UnprocessableEntityError if the key was used with another request.
        """
        op = _core.create_run(workflow_id, input, version=version, idempotency_key=idempotency_key)
        return self._client._request(op)

    def list(
        self,
        workflow_id: str | None = None,
        *,
        status: str | None = None,
        limit: int | None = None,
        after: str | None = None,
    ) -> RunList:
        """Runs newest first, without their steps: the workflow's, or the account's across
        workflows without `workflow_id`. `status` filters, `limit` is 1-100 (default 50),
        `after` a run id (the runs older than it); the result's `has_more` says whether
        older runs follow."""
        op = _core.list_runs(workflow_id, status=status, limit=limit, after=after)
        return self._client._request(op)

    def cancel(self, run_id: str) -> Run:
        """Cancel a queued, running or paused run; returns it `cancelled`. Its model call in
        flight is aborted; a tool call already started finishes and is recorded.

        Raises ConflictError if the run had already finished."""
        return self._client._request(_core.cancel_run(run_id))

    def retry(self, run_id: str) -> Run:
        """Retry a failed or cancelled run as a new run (returned `queued`): its completed
        steps are reused, not called again, and it executes from the step that did not
        complete. The source run never changes. Raises ConflictError for other statuses."""
        return self._client._request(_core.retry_run(run_id))

    def fork(
        self,
        run_id: str,
        *,
        from_step: int,
        input: str | None = None,
        use_current_workflow: bool = False,
    ) -> Run:
        """A new run whose steps before `from_step` (0-based) are copies of this run's, and
        which executes from `from_step`: with a new `input` if given, and with the workflow
        as it is now if `use_current_workflow` (else as the source run had it)."""
        op = _core.fork_run(run_id, from_step, input, use_current_workflow)
        return self._client._request(op)

    def retrieve(self, run_id: str) -> Run:
        """One run, with its steps in order."""
        return self._client._request(_core.retrieve_run(run_id))

    def respond(
        self,
        run_id: str,
        *,
        action: str,
        input: str | None = None,
        reason: str | None = None,
    ) -> RespondResult:
        """Answer a run that is `waiting_input`; it resumes (the result's status: `running`).

        Args:
            action: "input" to answer a question, "approve" or "reject" for an approval;
                must match `run.pending.kind`.
            input: the answer (required with action="input").
            reason: why you reject (passed to the agent).

        Raises:
            BadRequestError: the action does not match the pending kind, or input is missing.
            ConflictError: the run is not waiting for input.

        Safe to retry: after an uncertain failure the SDK looks at the run before sending the
        answer again, so one answer is never delivered twice.
        """
        body = _core.respond_body(action, input, reason)
        return self._client._drive(_core.respond(self._client._config, run_id, body))

    def poll(self, run_id: str, *, interval: float = 1.0, timeout: float | None = None) -> Run:
        """Wait until the run is `completed`, `failed` or `waiting_input`, and return it.

        Fetches the run every `interval` seconds (the reference's 1-2 s cadence). Check
        `run.status`: a failed run is not an exception. Raises PollTimeoutError after
        `timeout` seconds (None: no limit); the run goes on on the server.
        """
        return self._client._drive(_core.poll(self._client._config, run_id, interval, timeout))

    def events(self, run_id: str, *, after: int = 0, page_size: int = 100) -> list[RunEvent]:
        """The run's durable event log after event `after`, oldest first (every page of it).

        Ids are 1, 2, 3... per run, with no gap: `events(run_id, after=n)` is what happened
        since event n.
        """
        return self._client._drive(_core.events(self._client._config, run_id, after, page_size))

    def stream(self, run_id: str, *, after: int | None = None) -> Iterator[RunEvent | StepDelta]:
        """Follow the run live: its events (replayed from the start, or after event `after`),
        then new ones as they happen, with `StepDelta`s (the agent's text as it is
        generated) in between. Ends after a terminal event (`run.completed`, `run.failed`,
        `run.cancelled`); a paused run's stream stays open through the respond.

            for event in client.runs.stream(run.id):
                if event.type == "step.delta":
                    print(event.text, end="", flush=True)
                elif event.type == "run.waiting_input":
                    print(event.run.pending.prompt)

        A dropped connection is re-opened with `Last-Event-ID`: no durable event is lost or
        repeated (deltas sent while it was down are not replayed).
        """
        state = StreamState(self._client._config, run_id, last_id=after or 0)
        http = self._client._http
        while not state.done:
            try:
                with http.stream(
                    "GET", state.url, headers=state.headers(), timeout=state.timeout()
                ) as response:
                    if response.status_code >= 400:
                        response.read()
                        delay = state.on_error_response(response)
                    else:
                        state.connected()
                        for line in response.iter_lines():
                            item = state.feed(line)
                            if item is not None:
                                yield item
                            if state.done:
                                return
                        delay = state.on_end()
            except httpx.HTTPError as exc:
                delay = state.on_exception(exc)
            time.sleep(delay)

    def create_and_poll(
        self,
        workflow_id: str,
        input: str,
        *,
        on_pause: PauseHandler | None = None,
        interval: float = 1.0,
        timeout: float | None = None,
    ) -> Run:
        """Trigger a run and wait for its end, answering pauses with `on_pause`.

            run = client.runs.create_and_poll(
                workflow_id,
                "Draft a launch email",
                on_pause=lambda run: {"action": "approve"}
                if run.pending.kind == "approval"
                else {"action": "input", "input": "Friendly, short."},
            )

        `on_pause(run)` gets each paused run and returns respond()'s keyword arguments, a str
        (shorthand for `{"action": "input", "input": ...}`), or None to stop and return the
        paused run. Without `on_pause`, returns at the first pause. `timeout` bounds each wait
        between pauses (time spent in `on_pause` is not counted).
        """
        plan = _core.create_and_poll(
            self._client._config, workflow_id, input, on_pause, interval, timeout
        )
        return self._client._drive(plan)


class AsyncRuns:
    """Runs: executions of a workflow on one input (async; see `Runs`)."""

    def __init__(self, client: AsyncLoopLlama) -> None:
        self._client = client

    async def create(
        self,
        workflow_id: str,
        input: str,
        *,
        version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Run:
        """Trigger a run (202), idempotently; see `Runs.create`."""
        op = _core.create_run(workflow_id, input, version=version, idempotency_key=idempotency_key)
        return await self._client._request(op)

    async def list(
        self,
        workflow_id: str | None = None,
        *,
        status: str | None = None,
        limit: int | None = None,
        after: str | None = None,
    ) -> RunList:
        """Runs newest first, without their steps; see `Runs.list`."""
        op = _core.list_runs(workflow_id, status=status, limit=limit, after=after)
        return await self._client._request(op)

    async def cancel(self, run_id: str) -> Run:
        """Cancel a queued, running or paused run; see `Runs.cancel`."""
        return await self._client._request(_core.cancel_run(run_id))

    async def retry(self, run_id: str) -> Run:
        """Retry a failed or cancelled run as a new run; see `Runs.retry`."""
        return await self._client._request(_core.retry_run(run_id))

    async def fork(
        self,
        run_id: str,
        *,
        from_step: int,
        input: str | None = None,
        use_current_workflow: bool = False,
    ) -> Run:
        """A new run reusing this run's steps before `from_step`; see `Runs.fork`."""
        op = _core.fork_run(run_id, from_step, input, use_current_workflow)
        return await self._client._request(op)

    async def retrieve(self, run_id: str) -> Run:
        """One run, with its steps in order."""
        return await self._client._request(_core.retrieve_run(run_id))

    async def respond(
        self,
        run_id: str,
        *,
        action: str,
        input: str | None = None,
        reason: str | None = None,
    ) -> RespondResult:
        """Answer a run that is `waiting_input`: action "input" (with `input`), "approve" or
        "reject" (optional `reason`). See `Runs.respond`."""
        body = _core.respond_body(action, input, reason)
        return await self._client._drive(_core.respond(self._client._config, run_id, body))

    async def poll(
        self,
        run_id: str,
        *,
        interval: float = 1.0,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> Run:
        """Wait until the run is `completed`, `failed` or `waiting_input`; see `Runs.poll`."""
        plan = _core.poll(self._client._config, run_id, interval, timeout)
        return await self._client._drive(plan)

    async def events(self, run_id: str, *, after: int = 0, page_size: int = 100) -> list[RunEvent]:
        """The run's durable event log after event `after`; see `Runs.events`."""
        plan = _core.events(self._client._config, run_id, after, page_size)
        return await self._client._drive(plan)

    async def stream(
        self, run_id: str, *, after: int | None = None
    ) -> AsyncIterator[RunEvent | StepDelta]:
        """Follow the run live, reconnecting on its own; see `Runs.stream`.

        async for event in client.runs.stream(run.id): ...
        """
        state = StreamState(self._client._config, run_id, last_id=after or 0)
        http = self._client._http
        while not state.done:
            try:
                async with http.stream(
                    "GET", state.url, headers=state.headers(), timeout=state.timeout()
                ) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        delay = state.on_error_response(response)
                    else:
                        state.connected()
                        async for line in response.aiter_lines():
                            item = state.feed(line)
                            if item is not None:
                                yield item
                            if state.done:
                                return
                        delay = state.on_end()
            except httpx.HTTPError as exc:
                delay = state.on_exception(exc)
            await asyncio.sleep(delay)

    async def create_and_poll(
        self,
        workflow_id: str,
        input: str,
        *,
        on_pause: AsyncPauseHandler | None = None,
        interval: float = 1.0,
        timeout: float | None = None,  # noqa: ASYNC109 (the run's deadline, as in Runs)
    ) -> Run:
        """Trigger a run and wait for its end, answering pauses with `on_pause` (a plain or an
        async function). See `Runs.create_and_poll`."""
        plan = _core.create_and_poll(
            self._client._config, workflow_id, input, on_pause, interval, timeout
        )
        return await self._client._drive(plan)
