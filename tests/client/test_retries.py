"""Retries: transient failures are retried with backoff (honouring Retry-After), within
`max_retries`; a request that creates something is never sent twice; an uncertain respond is
reconciled instead of delivering one answer twice.

Faults come from `FlakyTransport`, in front of the real app: what the server did is real.
"""

from __future__ import annotations

import httpx
import pytest

from loopllama import (
    APIConnectionError,
    APITimeoutError,
    AsyncLoopLlama,
    ConflictError,
    InternalServerError,
    RateLimitError,
    UnprocessableEntityError,
)
from loopllama.client import _core, _retry
from loopllama.client._core import Config, Send, Sleep
from loopllama.client._retry import Outcome, Safety
from loopllama.client.types import HumanInTheLoop
from loopllama.providers.fake import reply, tool_call
from tests.client.support import (
    BASE_URL,
    FlakyTransport,
    answer_lost,
    dropped,
    refused,
    status,
)

FAST = 0.01


async def new_workflow(sdk, **fields):
    crew = [{"role": "writer", "systemPrompt": "Write."}]
    return await sdk.workflows.create(name="Retried", model="fake/test", crew=crew, **fields)


# --- idempotent requests: retried on every transient failure ----------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        refused("GET", "/v1/workflows"),
        answer_lost("GET", "/v1/workflows"),
        dropped("GET", "/v1/workflows"),
        status(503, "GET", "/v1/workflows"),
        status(429, "GET", "/v1/workflows", headers={"Retry-After": "0"}),
    ],
    ids=["refused", "timeout", "dropped", "503", "429"],
)
async def test_a_get_is_retried_until_it_succeeds(sdk, transport, fault):
    workflow = await new_workflow(sdk)
    transport.add(fault, fault)
    assert [w.id for w in await sdk.workflows.list()] == [workflow.id]
    assert transport.attempts("GET", "/v1/workflows") == 3


async def test_retries_are_bounded_by_max_retries(app, api_key):
    transport = FlakyTransport(app, *[status(503, "GET", "/v1/workflows")] * 5)
    async with AsyncLoopLlama(
        api_key=api_key, base_url=BASE_URL, transport=transport, max_retries=3
    ) as client:
        with pytest.raises(InternalServerError):
            await client.workflows.list()
    assert transport.attempts("GET") == 4  # one attempt and three retries


async def test_with_options_changes_the_retry_budget(sdk, transport):
    transport.add(*[refused("GET", "/v1/workflows")] * 3)
    with pytest.raises(APIConnectionError):
        await sdk.with_options(max_retries=0).workflows.list()
    assert transport.attempts("GET") == 1
    assert await sdk.with_options(max_retries=5).workflows.list() == []
    assert transport.attempts("GET") == 4
    assert sdk.max_retries == 2  # the original is unchanged and still open
    assert await sdk.workflows.list() == []


async def test_a_patch_whose_answer_was_lost_is_sent_again(sdk, transport):
    workflow = await new_workflow(sdk)
    transport.add(answer_lost("PATCH"))
    assert (await sdk.workflows.pause(workflow.id)).status == "paused"
    assert transport.attempts("PATCH") == 2


async def test_a_delete_whose_answer_was_lost_still_succeeds(sdk, transport):
    workflow = await new_workflow(sdk)
    transport.add(answer_lost("DELETE"))
    assert await sdk.workflows.delete(workflow.id) is None  # the retry's 404 means "done"
    assert transport.attempts("DELETE") == 2
    assert await sdk.workflows.list() == []


# --- requests that create: never sent twice ---------------------------------------------------


async def test_creating_a_run_is_retried_when_the_request_never_left(sdk, transport):
    workflow = await new_workflow(sdk)
    transport.add(refused("POST", "/runs"), status(429, "POST", "/runs"))
    run = await sdk.runs.create(workflow.id, "Once.")
    assert transport.attempts("POST", "/runs") == 3
    assert [r.id for r in await sdk.runs.list(workflow.id)] == [run.id]


@pytest.mark.parametrize(
    "fault",
    [answer_lost("POST", "/runs"), dropped("POST", "/runs"), status(500, "POST", "/runs")],
    ids=["timeout", "dropped", "500"],
)
async def test_creating_a_run_is_retried_with_its_idempotency_key(sdk, transport, fault):
    # An uncertain failure is retried with the same Idempotency-Key: whether or not the first
    # attempt reached the server, exactly one run exists afterwards.
    workflow = await new_workflow(sdk)
    transport.add(fault)
    run = await sdk.runs.create(workflow.id, "Once.")
    assert transport.attempts("POST", "/runs") == 2
    assert [r.id for r in await sdk.runs.list(workflow.id)] == [run.id]
    posts = [r for r in transport.requests if r.method == "POST" and r.url.path.endswith("/runs")]
    keys = {r.headers["idempotency-key"] for r in posts}
    assert len(keys) == 1 and next(iter(keys)).startswith("loopllama-sdk-")
    second = await sdk.runs.create(workflow.id, "Once.")  # a new call: a new key, a new run
    assert second.id != run.id


async def test_a_caller_key_is_sent_and_replays_the_run(sdk):
    workflow = await new_workflow(sdk)
    first = await sdk.runs.create(workflow.id, "Once.", idempotency_key="order-1")
    again = await sdk.runs.create(workflow.id, "Once.", idempotency_key="order-1")
    assert again.id == first.id
    with pytest.raises(UnprocessableEntityError, match="different request"):
        await sdk.runs.create(workflow.id, "Other.", idempotency_key="order-1")


async def test_creating_a_workflow_is_not_retried_after_a_lost_answer(sdk, transport):
    transport.add(answer_lost("POST", "/v1/workflows"))
    with pytest.raises(APITimeoutError, match=r"workflows\.list"):
        await new_workflow(sdk)
    assert len(await sdk.workflows.list()) == 1


# --- respond: reconciled, never delivered twice -----------------------------------------------


async def paused_run(sdk, fake_provider, *then):
    workflow = await new_workflow(sdk, human_in_the_loop=HumanInTheLoop(ask_questions=True))
    fake_provider.enqueue(tool_call("ask_human", {"question": "Tone?"}), *then)
    run = await sdk.runs.create(workflow.id, "Draft.")
    run = await sdk.runs.poll(run.id, interval=FAST, timeout=10)
    assert run.is_paused
    return run


async def test_a_respond_whose_answer_was_lost_is_not_sent_twice(sdk, transport, fake_provider):
    run = await paused_run(sdk, fake_provider, reply("Done."))
    transport.add(answer_lost("POST", "/respond"))
    result = await sdk.runs.respond(run.id, action="input", input="Friendly.")
    assert result.id == run.id and result.status in ("running", "completed")
    assert transport.attempts("POST", "/respond") == 1  # the run had moved on: not resent
    done = await sdk.runs.poll(run.id, interval=FAST, timeout=10)
    assert done.status == "completed" and done.output == "Done."


async def test_a_respond_that_never_arrived_is_sent_again(sdk, transport, fake_provider):
    run = await paused_run(sdk, fake_provider, reply("Done."))
    transport.add(status(503, "POST", "/respond"), refused("POST", "/respond"))
    result = await sdk.runs.respond(run.id, action="input", input="Friendly.")
    assert (result.id, result.status) == (run.id, "running")
    assert transport.attempts("POST", "/respond") == 3
    assert (await sdk.runs.poll(run.id, interval=FAST, timeout=10)).output == "Done."


async def test_a_respond_to_a_run_that_is_not_paused_is_a_conflict_at_once(
    sdk, transport, fake_provider
):
    run = await paused_run(sdk, fake_provider, reply("Done."))
    await sdk.runs.respond(run.id, action="input", input="Friendly.")
    await sdk.runs.poll(run.id, interval=FAST, timeout=10)
    with pytest.raises(ConflictError):
        await sdk.runs.respond(run.id, action="input", input="Twice.")
    assert transport.attempts("POST", "/respond") == 2


def drive(plan, *outcomes):
    """Run a plan by hand: feed `outcomes` to its Send actions; return (actions, result)."""
    actions, feed, value = [], list(outcomes), None
    try:
        while True:
            action = plan.send(value)
            actions.append(action)
            value = feed.pop(0) if isinstance(action, Send) else None
    except StopIteration as stop:
        return actions, stop.value


def answer(code: int, body=None, headers=None) -> httpx.Response:
    request = httpx.Request("GET", "http://testserver/")
    return httpx.Response(code, json=body, headers=headers, request=request)


CONFIG = Config("ll_live_x", "http://testserver", httpx.Timeout(5), max_retries=2)
PAUSED = {"data": {"id": "r1", "status": "waiting_input", "pending": {"kind": "input"}}}


def test_a_conflict_on_a_resent_respond_means_the_first_one_arrived():
    request = httpx.Request("POST", "http://testserver/v1/runs/r1/respond")
    plan = _core.respond(CONFIG, "r1", {"action": "approve"})
    actions, result = drive(
        plan,
        httpx.ReadTimeout("lost", request=request),  # uncertain
        answer(200, PAUSED),  # the reconciling GET: still paused
        answer(409, {"error": "Run is not waiting for input"}),  # the resend: too late
        answer(200, {"data": {"id": "r1", "status": "running"}}),  # where the run stands
    )
    assert (result.id, result.status) == ("r1", "running")
    sends = [a for a in actions if isinstance(a, Send)]
    assert [(s.method, s.url.rsplit("/v1", 1)[1]) for s in sends] == [
        ("POST", "/runs/r1/respond"),
        ("GET", "/runs/r1"),
        ("POST", "/runs/r1/respond"),
        ("GET", "/runs/r1"),
    ]


def test_a_first_conflict_is_raised():
    plan = _core.respond(CONFIG, "r1", {"action": "approve"})
    with pytest.raises(ConflictError):
        drive(plan, answer(409, {"error": "Run is not waiting for input"}))


# --- backoff and Retry-After ------------------------------------------------------------------


def test_retry_after_is_honoured(monkeypatch):
    plan = _core.request(CONFIG, _core.list_workflows())
    actions, result = drive(
        plan,
        answer(429, {"error": "Slow down"}, {"Retry-After": "2.5"}),
        answer(503, {"error": "Busy"}, {"retry-after-ms": "1500"}),
        answer(200, {"data": []}),
    )
    assert result == []
    assert [a.seconds for a in actions if isinstance(a, Sleep)] == [2.5, 1.5]


def test_a_retry_after_beyond_a_minute_is_not_waited_for():
    plan = _core.request(CONFIG, _core.list_workflows())
    with pytest.raises(RateLimitError) as caught:
        drive(plan, answer(429, {"error": "Slow down"}, {"Retry-After": "120"}))
    assert caught.value.retry_after == 120.0


def test_backoff_grows_exponentially_with_jitter_and_a_cap(monkeypatch):
    monkeypatch.setattr(_retry, "INITIAL_RETRY_DELAY", 0.5)
    for attempt, nominal in enumerate([0.5, 1.0, 2.0, 4.0, 8.0, 8.0]):
        delays = {_retry.backoff(attempt) for _ in range(50)}
        assert all(0.75 * nominal <= d <= nominal for d in delays)
        assert len(delays) > 1  # jittered


def test_failures_are_classified_by_what_the_server_may_have_done():
    request = httpx.Request("POST", "http://testserver/v1/workflows/w/runs")
    cases = {
        httpx.ConnectError("x", request=request): Outcome.NOT_PROCESSED,
        httpx.ConnectTimeout("x", request=request): Outcome.NOT_PROCESSED,
        httpx.PoolTimeout("x", request=request): Outcome.NOT_PROCESSED,
        httpx.ReadTimeout("x", request=request): Outcome.UNCERTAIN,
        httpx.WriteTimeout("x", request=request): Outcome.UNCERTAIN,
        httpx.ReadError("x", request=request): Outcome.UNCERTAIN,
        httpx.RemoteProtocolError("x", request=request): Outcome.UNCERTAIN,
        httpx.UnsupportedProtocol("x", request=request): Outcome.FINAL,
    }
    for exc, outcome in cases.items():
        assert _retry.failure_from_exception(exc).outcome is outcome, exc
    assert _retry.failure_from_response(answer(429)).outcome is Outcome.NOT_PROCESSED
    assert _retry.failure_from_response(answer(408)).outcome is Outcome.NOT_PROCESSED
    assert _retry.failure_from_response(answer(500)).outcome is Outcome.UNCERTAIN
    assert _retry.failure_from_response(answer(409)).outcome is Outcome.FINAL
    uncertain = _retry.failure_from_response(answer(502))
    assert _retry.retry_delay(uncertain, Safety.IDEMPOTENT, 0, 2) is not None
    assert _retry.retry_delay(uncertain, Safety.CREATES, 0, 2) is None
    assert _retry.retry_delay(uncertain, Safety.IDEMPOTENT, 2, 2) is None


def test_retry_after_as_an_http_date():
    headers = httpx.Headers({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert _retry.retry_after_seconds(headers) == 0.0  # in the past: retry now
    assert _retry.retry_after_seconds(httpx.Headers({"Retry-After": "soon"})) is None
