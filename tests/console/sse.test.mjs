// Unit tests of the console's SSE reader: `node --test tests/console/sse.test.mjs` (run by
// tests/console/test_sse_reader.py).
import assert from "node:assert/strict";
import { test } from "node:test";

import { SSEParser, StreamError, follow } from "../../src/loopllama/console/static/sse.mjs";

function parse(chunks) {
  const events = [];
  const parser = new SSEParser((event) => events.push(event));
  for (const chunk of chunks) parser.feed(chunk);
  return { events, parser };
}

test("events, ids, comments and multi-line data", () => {
  const { events } = parse([
    ": keep-alive\n\nid: 1\nevent: run.queued\ndata: {\"a\":1}\n\n",
    "event: step.delta\ndata: line one\ndata: line two\n\n",
  ]);
  assert.deepEqual(events, [
    { type: "run.queued", data: '{"a":1}', id: "1" },
    { type: "step.delta", data: "line one\nline two", id: null },
  ]);
});

test("chunks split anywhere, CRLF split between chunks, and no leading space kept", () => {
  const text = "id: 7\r\nevent: step.completed\r\ndata:{\"x\": \"é\"}\r\n\r\n";
  for (let at = 1; at < text.length; at++) {
    const { events } = parse([text.slice(0, at), text.slice(at)]);
    assert.deepEqual(events, [{ type: "step.completed", data: '{"x": "é"}', id: "7" }], `split at ${at}`);
  }
});

test("a block without data dispatches nothing; an unterminated block waits", () => {
  const { events, parser } = parse(["id: 3\n\n", "event: x\ndata: y\n"]);
  assert.deepEqual(events, []);
  assert.equal(parser.lastEventId, "3");
  parser.feed("\n");
  assert.equal(events.length, 1);
});

function body(parts, { fail = false } = {}) {
  const encoder = new TextEncoder();
  const queue = [...parts];
  // One part per read, then the end (or, as when a connection drops, an error).
  return new ReadableStream({
    pull(controller) {
      if (queue.length) controller.enqueue(encoder.encode(queue.shift()));
      else if (fail) controller.error(new TypeError("network error"));
      else controller.close();
    },
  });
}

test("follow resumes after a drop with Last-Event-ID and stops after done()", async () => {
  const calls = [];
  const answers = [
    () => new Response(body(["id: 1\nevent: a\ndata: 1\n\nevent: step.delta\ndata: d\n\nid: 2\nevent: b\ndata: 2\n\n"], { fail: true })),
    () => Promise.reject(new TypeError("connection refused")),
    () => new Response(body(["id: 3\nevent: run.completed\ndata: 3\n\n"])),
  ];
  const seen = [];
  let drops = 0;
  await follow("/v1/runs/r/stream", {
    headers: { Authorization: "Bearer k" },
    fetch: async (url, init) => {
      calls.push(init.headers);
      return answers[calls.length - 1]();
    },
    onEvent: (event) => seen.push(event.type),
    onDrop: () => drops++,
    done: () => seen.includes("run.completed"),
    retryMs: 1,
  });
  assert.deepEqual(seen, ["a", "step.delta", "b", "run.completed"]);
  assert.equal(drops, 2);
  assert.equal(calls[0]["Last-Event-ID"], undefined);
  assert.equal(calls[1]["Last-Event-ID"], "2");
  assert.equal(calls[2]["Last-Event-ID"], "2");
  assert.ok(calls.every((headers) => headers.Authorization === "Bearer k"));
});

test("follow rejects on a 4xx with the API's message and retries a 5xx", async () => {
  let n = 0;
  const fetch = async () => {
    n += 1;
    if (n === 1) return new Response('{"error":"Service unavailable"}', { status: 503 });
    return new Response('{"error":"Run not found"}', { status: 404 });
  };
  await assert.rejects(
    follow("/x", { fetch, onEvent: () => {}, retryMs: 1 }),
    (error) => error instanceof StreamError && error.status === 404 && error.message === "Run not found",
  );
  assert.equal(n, 2);
});

test("follow stops when aborted", async () => {
  const controller = new AbortController();
  const fetch = async () => {
    controller.abort();
    throw new DOMException("aborted", "AbortError");
  };
  await follow("/x", { fetch, onEvent: () => {}, signal: controller.signal });
});
