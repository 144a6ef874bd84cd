"""Logs: `LOOPLLAMA_LOG_FORMAT=json` gives one JSON object per line with the contextual fields
where they apply; text stays the default; key-shaped strings are masked."""

from __future__ import annotations

import io
import json
import logging

import pytest

from loopllama import telemetry
from loopllama.settings import TelemetrySettings
from loopllama.telemetry import fields
from loopllama.telemetry.logs import ContextFilter, formatter
from tests.fakes.otlp_receiver import OtlpReceiver
from tests.helpers import LiveServer, free_port, wait_for_run
from tests.log_secrets import SecretWatch


def _logger(fmt: str) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter(fmt))
    handler.addFilter(ContextFilter())
    logger = logging.getLogger(f"loopllama.test.{fmt}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


def _records(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_the_context_where_it_applies():
    logger, stream = _logger("json")
    logger.info("outside any run")
    with fields.scope():  # a request: authentication annotates the account
        fields.annotate(account_id="acc_1")
        with fields.scope(run_id="run_1"), fields.scope(step=2):
            logger.warning("inside step %d", 2)
        logger.info("after the route returned")
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")

    outside, inside, after, failed = _records(stream)
    assert outside.keys() == {"time", "level", "logger", "message"}
    assert outside["logger"] == "loopllama.test.json"
    assert outside["time"].endswith("Z")
    assert inside["message"] == "inside step 2"
    assert inside["level"] == "WARNING"
    assert (inside["run_id"], inside["step"], inside["account_id"]) == ("run_1", 2, "acc_1")
    assert after["account_id"] == "acc_1"
    assert "run_id" not in after
    assert "ValueError: boom" in failed["exc_info"]


def test_trace_id_when_traces_are_on(monkeypatch):
    logger, stream = _logger("json")
    with OtlpReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
        telemetry.configure(TelemetrySettings(), "sqlite://")  # traces on, no metrics
        try:
            with telemetry.run_pass({"id": "run_9", "account_id": "acc_9", "attempt": 1}):
                logger.info("in a run")
        finally:
            telemetry.shutdown()
        (span,) = receiver.wait_for(lambda s: len(s) == 1)
    (record,) = _records(stream)
    assert record["trace_id"] == span.trace_id
    assert record["run_id"] == "run_9"


def test_text_is_the_default_with_the_context_as_a_suffix():
    logger, stream = _logger("text")
    with fields.scope(run_id="run_1", step=0):
        logger.info("hello")
    assert stream.getvalue().rstrip().endswith("loopllama.test.text: hello [run_id=run_1 step=0]")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_key_shaped_strings_are_masked(fmt):
    logger, stream = _logger(fmt)
    logger.info("got %s", "ll_live_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_ab")
    assert "AbCdEfGh" not in stream.getvalue()
    assert "ll_live_[redacted]" in stream.getvalue()


async def test_a_json_server_writes_only_json_lines(tmp_path, provider_server):
    """`loopllama serve` with JSON logs (and its metrics port, scraped once a run finished)."""
    port = free_port()
    server = LiveServer(
        tmp_path, provider_server, LOOPLLAMA_LOG_FORMAT="json", LOOPLLAMA_METRICS_PORT=str(port)
    )
    server.start()
    try:
        async with server.client() as http:
            body = {
                "name": "w",
                "model": "claude-test",
                "crew": [{"role": "a", "systemPrompt": "A"}],
            }
            workflow = (await http.post("/v1/workflows", json=body)).json()["data"]
            created = await http.post(f"/v1/workflows/{workflow['id']}/runs", json={"input": "x"})
            await wait_for_run(http, created.json()["data"]["id"])
            scraped = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    finally:
        server.stop()
    assert 'loopllama_runs_total{status="completed"} 1.0' in scraped
    lines = server.log_path.read_text().splitlines()
    assert any("Uvicorn running" in json.loads(line)["message"] for line in lines)
    for line in lines:
        assert {"time", "level", "logger", "message"} <= json.loads(line).keys()
    assert server.api_key not in server.log_path.read_text()


def test_the_session_watches_every_log_line(_no_secret_in_any_log_line):
    """The session-wide check is live: it sees lines, and it would catch a key."""
    watch = _no_secret_in_any_log_line
    seen = watch.lines
    logging.getLogger("loopllama.test").info("a harmless line")
    assert watch.lines == seen + 1
    probe = SecretWatch()
    probe.emit(logging.makeLogRecord({"msg": "key ll_live_" + "x" * 43}))
    probe.emit(logging.makeLogRecord({"msg": "header Bearer crm-secret-123"}))
    probe.emit(logging.makeLogRecord({"msg": "hint ll_live_ab12…"}))
    assert len(probe.leaks) == 2


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_the_metrics_port_option(command):
    from click.testing import CliRunner

    from loopllama.cli.main import cli

    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0
    assert "--metrics-port" in result.output
    assert "LOOPLLAMA_METRICS_PORT" in result.output
