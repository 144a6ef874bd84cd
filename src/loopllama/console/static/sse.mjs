// Server-Sent Events over fetch. The browser's EventSource cannot send an Authorization header,
// so the console reads the stream with fetch and resumes it itself with Last-Event-ID.
// Pure module (no DOM): unit-tested with `node --test` (tests/console/sse.test.mjs).

// Parses the text/event-stream format (WHATWG HTML, "Server-sent events", 9.2.6) from chunks
// that may split anywhere, even between the \r and \n of one line ending.
export class SSEParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buffer = "";
    this.reset();
    this.lastEventId = null;
  }

  reset() {
    this.type = "";
    this.data = [];
    this.id = null;
  }

  feed(text) {
    this.buffer += text;
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (match === null) return;
      // A lone \r at the very end may be the first half of \r\n: wait for the next chunk.
      if (match[0] === "\r" && match.index === this.buffer.length - 1) return;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      this.line(line);
    }
  }

  line(line) {
    if (line === "") return this.dispatch();
    if (line.startsWith(":")) return; // a comment: the server's keep-alive
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.data.push(value);
    else if (field === "event") this.type = value;
    else if (field === "id" && !value.includes("\0")) {
      this.id = value;
      this.lastEventId = value;
    }
  }

  dispatch() {
    if (this.data.length > 0) {
      this.onEvent({ type: this.type || "message", data: this.data.join("\n"), id: this.id });
    }
    this.reset();
  }
}

export class StreamError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
  });

// Follows a stream until `done()` says so (after a terminal event) or `signal` aborts. A dropped
// connection, a 5xx or a close before `done()` reconnects with backoff, sending the id of the
// last event received as Last-Event-ID, so no durable event is skipped or repeated. A 4xx is
// final: it rejects with a StreamError carrying the API's own message.
export async function follow(url, options) {
  const {
    headers = {},
    onEvent,
    onOpen = () => {},
    onDrop = () => {},
    done = () => false,
    signal,
    fetch: fetchImpl = globalThis.fetch,
    retryMs = 500,
    maxRetryMs = 8000,
  } = options;
  let lastEventId = options.lastEventId ?? null;
  let delay = retryMs;
  while (!signal?.aborted) {
    const request = { ...headers, Accept: "text/event-stream" };
    if (lastEventId !== null) request["Last-Event-ID"] = String(lastEventId);
    let response;
    try {
      response = await fetchImpl(url, { headers: request, signal, cache: "no-store" });
    } catch (error) {
      if (signal?.aborted) return;
      onDrop(error);
      await sleep(delay, signal);
      delay = Math.min(delay * 2, maxRetryMs);
      continue;
    }
    if (!response.ok) {
      const message = await errorMessage(response);
      if (response.status < 500) throw new StreamError(response.status, message);
      onDrop(new StreamError(response.status, message));
      await sleep(delay, signal);
      delay = Math.min(delay * 2, maxRetryMs);
      continue;
    }
    onOpen();
    delay = retryMs;
    const parser = new SSEParser((event) => {
      if (event.id !== null) lastEventId = event.id;
      onEvent(event);
    });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    try {
      for (;;) {
        const { value, done: ended } = await reader.read();
        if (ended) break;
        parser.feed(value);
      }
    } catch (error) {
      if (signal?.aborted) return;
      onDrop(error);
      await sleep(delay, signal);
      continue;
    }
    if (done()) return;
    onDrop(new Error("stream closed"));
    await sleep(delay, signal);
  }
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    if (typeof body?.error === "string") return body.error;
  } catch {
    // not JSON: fall through to the status line
  }
  return `${response.status} ${response.statusText}`.trim();
}
