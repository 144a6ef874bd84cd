// Webhooks: endpoints, create (the secret shown once, with a copy button), one endpoint's
// deliveries with redeliver, enable / disable and delete.

import { del, get, patch, post } from "./api.mjs";
import { clearErrors, field, showError } from "./forms.mjs";
import { badge, h, replace, time } from "./dom.mjs";

const EVENTS = [
  "run.queued", "run.started", "step.started", "tool_call.updated", "step.completed", "step.failed",
  "run.waiting_input", "run.resumed", "run.completed", "run.failed", "run.cancelled",
];
const DEFAULT_EVENTS = new Set(["run.completed", "run.failed", "run.waiting_input"]);

export async function webhooksPage(main) {
  const { data } = await get("/v1/webhooks");
  const list = data.length
    ? h("div", { class: "table-wrap" }, h("table", {},
        h("thead", {}, h("tr", {}, ["Endpoint", "Status", "Events", "Created"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, data.map((hook) => h("tr", {},
          h("td", {}, h("a", { href: `#/webhooks/${hook.id}` }, hook.url), hook.description ? h("div", { class: "muted" }, hook.description) : null),
          h("td", {}, badge(hook.status)),
          h("td", {}, hook.events.join(", ")),
          h("td", {}, time(hook.created_at)),
        ))),
      ))
    : h("p", { class: "muted" }, "No webhook endpoints yet.");
  replace(main, h("h1", {}, "Webhooks"), list, createForm(main));
}

function createForm(main) {
  const url = h("input", { id: "hook-url", type: "url", required: true, placeholder: "https://example.com/hooks/loopllama" });
  const description = h("input", { id: "hook-description" });
  const workflow = h("input", { id: "hook-workflow", placeholder: "every workflow" });
  const boxes = EVENTS.map((event) => h("input", { type: "checkbox", id: `ev-${event}`, value: event, checked: DEFAULT_EVENTS.has(event) }));
  const summary = h("p", { class: "error", role: "alert" });
  const form = h(
    "form",
    { class: "card", novalidate: true, "aria-labelledby": "hook-create-title" },
    h("h2", { id: "hook-create-title" }, "Add an endpoint"),
    field("URL", url),
    field("Description", description),
    field("Only this workflow (id)", workflow),
    h("fieldset", { class: "events" }, h("legend", {}, "Events"),
      boxes.map((box) => h("label", { class: "check", for: box.id }, box, box.value))),
    h("button", { type: "submit" }, "Add endpoint"),
    summary,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    replace(summary);
    const body = { url: url.value, events: boxes.filter((b) => b.checked).map((b) => b.value) };
    if (description.value) body.description = description.value;
    if (workflow.value.trim()) body.workflow_id = workflow.value.trim();
    try {
      const { data } = await post("/v1/webhooks", body);
      await webhooksPage(main);
      main.prepend(secretNotice(data));
      main.querySelector("#secret-copy").focus();
    } catch (error) {
      showError(form, summary, error.message, [
        { control: url, names: ["url"], required: true },
        { control: workflow, names: ["workflow"] },
      ]);
    }
  });
  return form;
}

function secretNotice(hook) {
  const status = h("span", { role: "status", class: "muted" });
  return h(
    "section",
    { class: "card notice", "aria-labelledby": "secret-title" },
    h("h2", { id: "secret-title" }, "Signing secret"),
    h("p", {}, "Endpoint ", h("a", { href: `#/webhooks/${hook.id}` }, hook.url), " was added. Copy its signing secret now: it is shown only this once."),
    h("div", { class: "secret-row" },
      h("code", { id: "secret", class: "secret" }, hook.secret),
      h("button", {
        type: "button",
        id: "secret-copy",
        onclick: async () => {
          try {
            await navigator.clipboard.writeText(hook.secret);
            replace(status, "Copied.");
          } catch {
            replace(status, "Copy failed: select the secret and copy it by hand.");
          }
        },
      }, "Copy secret"),
      status,
    ),
  );
}

export async function webhookPage(main, id) {
  const path = `/v1/webhooks/${encodeURIComponent(id)}`;
  const [{ data: hook }, { data: deliveries }] = await Promise.all([get(path), get(`${path}/deliveries`)]);
  const message = h("p", { class: "error", role: "alert" });
  const reload = () => webhookPage(main, id);
  const act = (label, action, extra = {}) =>
    h("button", { type: "button", ...extra, onclick: async () => {
      try {
        await action();
      } catch (error) {
        replace(message, error.message);
      }
    } }, label);
  const rows = deliveries.map((delivery) => h("tr", {},
    h("td", {}, h("span", { class: "mono" }, delivery.id)),
    h("td", {}, delivery.event_type),
    h("td", {}, delivery.run_id ? h("a", { href: `#/runs/${delivery.run_id}`, class: "mono" }, delivery.run_id) : "—"),
    h("td", {}, badge(delivery.status)),
    h("td", {}, String(delivery.attempts)),
    h("td", {}, delivery.last_status_code ?? delivery.last_error ?? "—"),
    h("td", {}, time(delivery.created_at)),
    h("td", {}, act("Redeliver", async () => (await post(`${path}/deliveries/${delivery.id}/redeliver`), reload()), { class: "small", "aria-label": `Redeliver ${delivery.id}` })),
  ));
  replace(
    main,
    h("h1", {}, "Webhook endpoint"),
    h("p", {}, h("span", { class: "mono" }, hook.url), " ", badge(hook.status)),
    h("p", { class: "muted" }, `${hook.id} · events: ${hook.events.join(", ")} · ${hook.workflow_id ? `workflow ${hook.workflow_id}` : "every workflow"}`),
    h("div", { class: "actions" },
      hook.status === "enabled"
        ? act("Disable", async () => (await patch(path, { status: "disabled" }), reload()))
        : act("Enable", async () => (await patch(path, { status: "enabled" }), reload())),
      act("Refresh", reload),
      act("Delete", async () => {
        if (!confirm(`Delete the endpoint ${hook.url}?`)) return;
        await del(path);
        location.hash = "#/webhooks";
      }, { class: "danger" }),
    ),
    message,
    h("h2", {}, "Deliveries"),
    rows.length
      ? h("div", { class: "table-wrap" }, h("table", {},
          h("thead", {}, h("tr", {}, ["Delivery", "Event", "Run", "Status", "Attempts", "Last answer", "Created", ""].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, rows)))
      : h("p", { class: "muted" }, "No deliveries yet."),
  );
}
