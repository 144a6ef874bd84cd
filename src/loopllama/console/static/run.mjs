// One run, live: its summary, a card per step whose text grows as the model streams, tool
// calls, the event timeline, the pending question or action, and cancel / retry / fork.
// Everything comes from the run's event stream (replayed from event 1, then live); a dropped
// connection resumes after the last event received, so nothing is shown twice or missed.

import { networkDown, networkUp, post, session } from "./api.mjs";
import { badge, cost, duration, h, json, replace, time } from "./dom.mjs";
import { follow } from "./sse.mjs";

const TERMINAL = new Set(["run.completed", "run.failed", "run.cancelled"]);

export function runPage(main, id) {
  const controller = new AbortController();
  const view = new RunView(id);
  replace(main, view.root);
  let ended = false;
  follow(`/v1/runs/${encodeURIComponent(id)}/stream`, {
    headers: session.headers(),
    signal: controller.signal,
    done: () => ended,
    onOpen: () => {
      networkUp();
      view.live("live");
    },
    onDrop: () => {
      view.live("reconnecting");
      networkDown();
    },
    onEvent: (event) => {
      const payload = JSON.parse(event.data);
      view.apply(event.type, payload);
      if (TERMINAL.has(event.type)) ended = true;
    },
  })
    .then(() => view.live(ended ? "ended" : "closed"))
    .catch((error) => {
      if (error.status === 401) window.dispatchEvent(new CustomEvent("unauthorized", { detail: error.message }));
      view.fail(error.message);
    });
  return () => controller.abort();
}

class RunView {
  constructor(id) {
    this.id = id;
    this.run = null;
    this.cards = new Map();
    this.status = h("span", { class: "live", role: "status" }, "connecting…");
    this.heading = h("h1", {}, "Run ", h("span", { class: "mono" }, id));
    this.summary = h("dl", { class: "summary" });
    this.pending = h("section", { class: "pending card", "aria-labelledby": "pending-title", hidden: true });
    this.controls = h("div", { class: "actions" });
    this.message = h("p", { class: "error", role: "alert" });
    this.steps = h("ol", { class: "steps", "aria-label": "Steps" });
    this.timeline = h("ol", { class: "timeline" });
    this.io = h("div", { class: "io" });
    this.root = h(
      "article",
      { class: "run" },
      h("div", { class: "title-row" }, this.heading, this.status),
      this.summary,
      this.controls,
      this.message,
      this.pending,
      this.io,
      h("div", { class: "run-body" },
        h("section", { "aria-labelledby": "steps-title", class: "steps-col" }, h("h2", { id: "steps-title" }, "Steps"), this.steps),
        h("section", { "aria-labelledby": "timeline-title", class: "timeline-col" }, h("h2", { id: "timeline-title" }, "Events"), this.timeline),
      ),
    );
  }

  live(state) {
    const words = { live: "● live", reconnecting: "reconnecting…", ended: "ended", closed: "stream closed" };
    replace(this.status, words[state]);
    this.status.dataset.state = state;
  }

  fail(message) {
    replace(this.message, message);
    this.live("closed");
  }

  // A durable event's payload is the event (`{id, type, created_at, data}`); a delta's is
  // `{step_id, order, text}`.
  apply(type, payload) {
    if (type === "step.delta") return this.delta(payload);
    this.event(type, payload);
    const data = payload.data;
    if (type.startsWith("run.")) this.setRun(type === "run.resumed" ? data.run : data);
    else if (type.startsWith("step.")) this.setStep(data, type);
    else if (type === "tool_call.updated") this.toolCall(data);
  }

  event(type, event) {
    this.timeline.append(
      h("li", {}, h("span", { class: "mono muted" }, `#${event.id}`), " ", h("strong", {}, type), " ", time(event.created_at)),
    );
  }

  setRun(run) {
    this.run = run;
    // total_steps counts the steps so far (a fork's copies included): shown when ahead.
    const total = run.total_steps > this.cards.size ? ` of ${run.total_steps}` : "";
    const rows = [
      ["Status", badge(run.status)],
      ["Workflow", h("a", { href: `#/workflows/${run.workflow_id}`, class: "mono" }, run.workflow_id), run.workflow_version ? ` (version ${run.workflow_version})` : ""],
      ["Created", time(run.created_at)],
      ["Started", time(run.started_at)],
      ["Finished", time(run.finished_at)],
      ["Duration", duration(run.started_at, run.finished_at)],
      ["Steps", `${this.cards.size}${total}`],
      ["Tokens", `${run.tokens_in} in · ${run.tokens_out} out`],
    ];
    if (cost(run)) rows.push(["Cost", cost(run)]);
    if (run.forked_from) {
      rows.push(["From", h("a", { href: `#/runs/${run.forked_from.run_id}`, class: "mono" }, run.forked_from.run_id), ` at step ${run.forked_from.from_step}`]);
    }
    replace(this.summary, rows.map(([term, ...value]) => h("div", {}, h("dt", {}, term), h("dd", {}, value))));
    replace(
      this.io,
      h("h2", {}, "Input"),
      h("pre", { class: "output" }, run.input),
      run.output !== null && run.output !== undefined ? [h("h2", {}, "Output"), h("pre", { class: "output", id: "run-output" }, run.output)] : null,
      run.error ? [h("h2", {}, "Error"), h("pre", { class: "output error" }, run.error)] : null,
    );
    this.renderControls(run);
    this.renderPending(run);
  }

  renderControls(run) {
    const act = (label, action, extra = {}) =>
      h("button", {
        type: "button",
        ...extra,
        onclick: async (event) => {
          event.currentTarget.disabled = true;
          replace(this.message);
          try {
            await action();
          } catch (error) {
            replace(this.message, error.message);
          } finally {
            event.target.disabled = false;
          }
        },
      }, label);
    const path = `/v1/runs/${this.id}`;
    const buttons = [];
    if (["queued", "running", "waiting_input"].includes(run.status)) {
      buttons.push(act("Cancel run", () => post(`${path}/cancel`), { class: "danger" }));
    }
    if (["failed", "cancelled"].includes(run.status)) {
      buttons.push(act("Retry", async () => (location.hash = `#/runs/${(await post(`${path}/retry`)).data.id}`)));
    }
    const step = h("input", { id: "fork-step", type: "number", min: 0, value: 0, class: "narrow-input" });
    const input = h("input", { id: "fork-input", placeholder: "same input" });
    const fork = h(
      "details",
      { class: "fork" },
      h("summary", {}, "Fork…"),
      h("div", { class: "fork-body" },
        h("label", { for: "fork-step" }, "From step"), step,
        h("label", { for: "fork-input" }, "New input (optional)"), input,
        act("Fork run", async () => {
          const body = { from_step: Number(step.value) };
          if (input.value) body.input = input.value;
          location.hash = `#/runs/${(await post(`${path}/fork`, body)).data.id}`;
        }),
      ),
    );
    replace(this.controls, buttons, fork);
  }

  renderPending(run) {
    const pending = run.status === "waiting_input" ? run.pending : null;
    this.pending.hidden = !pending;
    if (!pending) return replace(this.pending);
    const error = h("p", { class: "error", role: "alert" });
    const respond = async (body) => {
      try {
        await post(`/v1/runs/${this.id}/respond`, body);
        replace(this.pending, h("p", { class: "muted" }, "Sent. Resuming…"));
      } catch (failure) {
        replace(error, failure.message);
      }
    };
    if (pending.kind === "input") {
      const answer = h("textarea", { id: "answer", rows: 3 });
      const form = h(
        "form",
        { novalidate: true },
        h("h2", { id: "pending-title" }, "The run asks"),
        h("blockquote", { class: "question" }, pending.prompt),
        h("label", { for: "answer" }, "Your answer"),
        answer,
        h("button", { type: "submit" }, "Send answer"),
        error,
      );
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        respond({ action: "input", input: answer.value });
      });
      replace(this.pending, form);
      return;
    }
    const reason = h("input", { id: "reject-reason" });
    replace(
      this.pending,
      h("h2", { id: "pending-title" }, "Approval needed"),
      h("p", {}, pending.prompt),
      h("p", {}, "Tool ", h("code", {}, pending.tool)),
      h("pre", { class: "output" }, json(pending.tool_input)),
      h("div", { class: "actions" },
        h("button", { type: "button", onclick: () => respond({ action: "approve" }) }, "Approve"),
      ),
      h("div", { class: "reject" },
        h("label", { for: "reject-reason" }, "Reason (optional)"),
        reason,
        h("button", { type: "button", class: "danger", onclick: () => respond(reason.value ? { action: "reject", reason: reason.value } : { action: "reject" }) }, "Reject"),
      ),
      error,
    );
  }

  card(step) {
    let card = this.cards.get(step.id);
    if (card) return card;
    const output = h("pre", { class: "output step-output", "aria-live": "off" });
    card = {
      root: h("li", { class: "card step", id: `step-${step.order}` }),
      head: h("div", { class: "step-head" }),
      meta: h("p", { class: "muted" }),
      output,
      tools: h("ul", { class: "tool-calls" }),
      calls: new Map(),
    };
    card.root.append(card.head, card.meta, output, card.tools);
    this.cards.set(step.id, card);
    // Steps arrive in order, but a fork's copied steps and a retry's may interleave: keep order.
    const after = [...this.steps.children].find((node) => Number(node.id.slice(5)) > step.order);
    this.steps.insertBefore(card.root, after ?? null);
    return card;
  }

  setStep(step, type) {
    const card = this.card(step);
    const running = type === "step.started";
    card.root.dataset.state = running ? "running" : type === "step.failed" ? "failed" : "completed";
    card.root.setAttribute("aria-busy", String(running));
    replace(
      card.head,
      h("h3", {}, `${step.order + 1}. ${step.role}`),
      badge(running ? "running" : type === "step.failed" ? "failed" : "completed"),
      step.forked ? h("span", { class: "badge" }, "copied") : null,
    );
    replace(
      card.meta,
      step.model, " · ", time(step.started_at),
      running ? "" : ` · ${duration(step.started_at, step.finished_at)} · ${step.tokens_in} in · ${step.tokens_out} out`,
      cost(step) ? ` · ${cost(step)}` : "",
    );
    if (!running) replace(card.output, step.error ? `${step.output || ""}${step.error}` : step.output || "");
    for (const call of step.tool_calls || []) this.setCall(card, call);
    if (this.run) this.setRun(this.run);
  }

  delta({ step_id: stepId, text }) {
    const card = this.cards.get(stepId);
    if (card) card.output.append(text);
  }

  toolCall({ step_id: stepId, tool_call: call }) {
    const card = this.cards.get(stepId);
    if (card) this.setCall(card, call);
  }

  setCall(card, call) {
    let item = card.calls.get(call.id);
    if (!item) {
      item = h("li", { class: "tool-call" });
      card.calls.set(call.id, item);
      card.tools.append(item);
    }
    replace(
      item,
      h("div", {}, h("code", {}, call.name), " ", badge(call.status)),
      h("details", {}, h("summary", {}, "Input"), h("pre", { class: "output" }, json(call.input))),
      call.result !== null && call.result !== undefined
        ? h("details", {}, h("summary", {}, call.is_error ? "Error" : "Result"), h("pre", { class: "output" }, typeof call.result === "string" ? call.result : json(call.result)))
        : null,
    );
  }
}
