// Workflows: the list, and one workflow (its form and JSON definition, pause / activate, lock /
// unlock, versions with restore, delete, trigger a run, its runs).

import { del, get, patch, post } from "./api.mjs";
import { clearErrors, field, showError } from "./forms.mjs";
import { badge, h, json, replace, time } from "./dom.mjs";
import { runsTable } from "./runs.mjs";

export async function workflowsPage(main) {
  const { data } = await get("/v1/workflows");
  const rows = data.map((workflow) =>
    h(
      "tr",
      {},
      h("td", {}, h("a", { href: `#/workflows/${workflow.id}` }, workflow.name)),
      h("td", {}, badge(workflow.status), workflow.locked ? h("span", { class: "badge" }, "locked") : null),
      h("td", {}, workflow.model),
      h("td", {}, workflow.crew.map((agent) => agent.role).join(", ")),
      h("td", {}, time(workflow.updated_at)),
    ),
  );
  replace(
    main,
    h("div", { class: "title-row" }, h("h1", {}, "Workflows"), h("a", { class: "button", href: "#/workflows/new" }, "New workflow")),
    data.length === 0
      ? h("p", { class: "muted" }, "No workflows yet.")
      : h(
          "div",
          { class: "table-wrap" },
          h(
            "table",
            {},
            h("thead", {}, h("tr", {}, ["Name", "Status", "Model", "Agents", "Updated"].map((t) => h("th", { scope: "col" }, t)))),
            h("tbody", {}, rows),
          ),
        ),
  );
}

const EMPTY = { name: "", description: "", model: "", crew: [{ role: "", systemPrompt: "" }] };

export async function workflowPage(main, id) {
  const workflow = id ? (await get(`/v1/workflows/${encodeURIComponent(id)}`)).data : null;
  const parts = [];
  if (workflow) {
    parts.push(
      h("div", { class: "title-row" }, h("h1", {}, workflow.name), badge(workflow.status), workflow.locked ? h("span", { class: "badge" }, "locked") : null),
      h("p", { class: "muted", id: "wf-meta" }, `${workflow.id} · version ${workflow.version ?? 1} · updated `, time(workflow.updated_at)),
      actions(main, workflow),
      trigger(workflow),
    );
  } else {
    parts.push(h("h1", {}, "New workflow"));
  }
  parts.push(editor(workflow));
  replace(main, parts);
  if (workflow) {
    const versions = h("section", { "aria-labelledby": "versions-title" }, h("h2", { id: "versions-title" }, "Versions"));
    const runs = h("section", { "aria-labelledby": "runs-title" }, h("h2", { id: "runs-title" }, "Runs"));
    main.append(runs, versions);
    await Promise.all([versionsList(versions, workflow), runsTable(runs, { workflow_id: workflow.id })]);
  }
}

function actions(main, workflow) {
  const message = h("p", { class: "error", role: "alert" });
  const act = (label, run, extra = {}) =>
    h("button", {
      type: "button",
      ...extra,
      onclick: async () => {
        try {
          await run();
        } catch (error) {
          replace(message, error.message);
        }
      },
    }, label);
  const path = `/v1/workflows/${workflow.id}`;
  const reload = () => workflowPage(main, workflow.id);
  return h(
    "div",
    { class: "actions" },
    workflow.status === "active"
      ? act("Pause", async () => (await patch(path, { status: "paused" }), reload()))
      : act("Activate", async () => (await patch(path, { status: "active" }), reload())),
    workflow.locked
      ? act("Unlock", async () => (await patch(path, { locked: false }), reload()))
      : act("Lock", async () => (await patch(path, { locked: true }), reload())),
    act(
      "Delete",
      async () => {
        if (!confirm(`Delete workflow "${workflow.name}"? Its runs stay retrievable by id.`)) return;
        await del(path);
        location.hash = "#/workflows";
      },
      { class: "danger" },
    ),
    message,
  );
}

function trigger(workflow) {
  const input = h("textarea", { id: "run-input", rows: 3, required: true });
  const summary = h("p", { class: "error", role: "alert" });
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "trigger-title", novalidate: true },
    h("h2", { id: "trigger-title" }, "Trigger a run"),
    field("Input", input),
    h("button", { type: "submit" }, "Run"),
    summary,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    try {
      const { data } = await post(`/v1/workflows/${workflow.id}/runs`, { input: input.value });
      location.hash = `#/runs/${data.id}`;
    } catch (error) {
      showError(form, summary, error.message, [{ control: input, names: ["input"], required: true }]);
    }
  });
  return form;
}

// The definition as the API takes it: what the form edits, and what the JSON view shows.
function definition(workflow) {
  const source = workflow || EMPTY;
  const body = {
    name: source.name,
    description: source.description ?? "",
    model: source.model,
    crew: source.crew.map((agent) => {
      const out = { role: agent.role, systemPrompt: agent.systemPrompt };
      if (agent.model && agent.model !== source.model) out.model = agent.model;
      if (agent.tools?.length) out.tools = agent.tools;
      return out;
    }),
  };
  if (source.human_in_the_loop) body.human_in_the_loop = source.human_in_the_loop;
  if (source.tools?.length) body.tools = source.tools;
  return body;
}

function editor(workflow) {
  let current = definition(workflow);
  const summary = h("p", { class: "error", role: "alert" });
  const name = h("input", { id: "wf-name", required: true });
  const description = h("input", { id: "wf-description" });
  const model = h("input", { id: "wf-model", placeholder: "the server's default" });
  const agents = h("div", { class: "agents" });
  const jsonText = h("textarea", { id: "wf-json", rows: 18, spellcheck: "false", class: "code" });
  const formPane = h("div", { id: "pane-form", role: "tabpanel", "aria-labelledby": "tab-form" });
  const jsonPane = h("div", { id: "pane-json", role: "tabpanel", "aria-labelledby": "tab-json", hidden: true });
  let mode = "form";
  let agentFields = [];

  const fill = () => {
    name.value = current.name;
    description.value = current.description || "";
    model.value = current.model || "";
    agentFields = [];
    replace(agents, current.crew.map((agent, index) => agentFieldset(agent, index)));
  };
  const agentFieldset = (agent, index) => {
    const role = h("input", { id: `agent-${index}-role`, value: agent.role, required: true });
    const prompt = h("textarea", { id: `agent-${index}-prompt`, rows: 3, required: true });
    prompt.value = agent.systemPrompt;
    const agentModel = h("input", { id: `agent-${index}-model`, value: agent.model || "", placeholder: "the workflow's model" });
    const tools = h("input", { id: `agent-${index}-tools`, value: (agent.tools || []).join(", "), placeholder: "send_email, http_request" });
    agentFields.push({ role, prompt, agentModel, tools });
    return h(
      "fieldset",
      { class: "agent" },
      h("legend", {}, `Agent ${index + 1}`),
      field("Role", role),
      field("System prompt", prompt),
      field("Agent model", agentModel),
      field("Agent tools", tools, "Comma-separated tool names"),
      current.crew.length > 1
        ? h("button", { type: "button", class: "link", onclick: () => (read(), current.crew.splice(index, 1), fill()) }, `Remove agent ${index + 1}`)
        : null,
    );
  };
  // The form's values into `current` (fields the form does not show are kept).
  const read = () => {
    current.name = name.value;
    current.description = description.value;
    if (model.value.trim()) current.model = model.value.trim();
    else delete current.model;
    current.crew = agentFields.map(({ role, prompt, agentModel, tools }) => {
      const agent = { role: role.value, systemPrompt: prompt.value };
      if (agentModel.value.trim()) agent.model = agentModel.value.trim();
      const names = tools.value.split(",").map((t) => t.trim()).filter(Boolean);
      if (names.length) agent.tools = names;
      return agent;
    });
  };
  const tab = (key, label) =>
    h("button", {
      type: "button",
      role: "tab",
      id: `tab-${key}`,
      "aria-controls": `pane-${key}`,
      "aria-selected": String(key === "form"),
      onclick: () => switchTo(key),
    }, label);
  const tabs = h("div", { role: "tablist", "aria-label": "Edit as" }, tab("form", "Form"), tab("json", "JSON"));
  const switchTo = (key) => {
    if (key === mode) return;
    if (key === "json") {
      read();
      jsonText.value = json(current);
    } else {
      try {
        current = JSON.parse(jsonText.value);
        if (!Array.isArray(current.crew)) current.crew = [];
      } catch (error) {
        replace(summary, `The JSON does not parse: ${error.message}`);
        return;
      }
      fill();
    }
    mode = key;
    formPane.hidden = key !== "form";
    jsonPane.hidden = key !== "json";
    for (const button of tabs.children) button.setAttribute("aria-selected", String(button.id === `tab-${key}`));
  };
  tabs.addEventListener("keydown", (event) => {
    if (event.key !== "ArrowRight" && event.key !== "ArrowLeft") return;
    const next = mode === "form" ? "json" : "form";
    switchTo(next);
    document.getElementById(`tab-${next}`).focus();
  });

  append(formPane, [
    field("Name", name),
    field("Description", description),
    field("Model", model, "For example anthropic/claude-sonnet-4-5, openai/gpt-4o-mini or local/smollm2"),
    h("h3", {}, "Agents"),
    agents,
    h("button", { type: "button", onclick: () => (read(), current.crew.push({ role: "", systemPrompt: "" }), fill()) }, "Add agent"),
  ]);
  append(jsonPane, [field("Definition (JSON)", jsonText, "The whole definition, as the API takes it")]);
  fill();

  const form = h(
    "form",
    { class: "card", novalidate: true, "aria-labelledby": "editor-title" },
    h("h2", { id: "editor-title" }, workflow ? "Edit" : "Definition"),
    tabs,
    formPane,
    jsonPane,
    h("div", { class: "actions" }, h("button", { type: "submit" }, workflow ? "Save changes" : "Create workflow")),
    summary,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    replace(summary);
    let body;
    if (mode === "json") {
      try {
        body = JSON.parse(jsonText.value);
      } catch (error) {
        replace(summary, `The JSON does not parse: ${error.message}`);
        return;
      }
    } else {
      read();
      body = structuredClone(current);
    }
    if (workflow) body = changes(definition(workflow), body);
    try {
      const { data } = workflow
        ? await patch(`/v1/workflows/${workflow.id}`, body)
        : await post("/v1/workflows", body);
      location.hash = `#/workflows/${data.id}`;
      if (workflow) window.dispatchEvent(new HashChangeEvent("hashchange"));
    } catch (error) {
      const fields = [
        { control: name, names: ["name"], required: true },
        { control: model, names: ["model"] },
      ];
      agentFields.forEach(({ role, prompt, tools }) => {
        fields.push({ control: role, names: ["role"], required: true });
        fields.push({ control: prompt, names: ["systemPrompt", "system prompt"], required: true });
        fields.push({ control: tools, names: ["tool"] });
      });
      if (mode === "json") showError(form, summary, error.message, [{ control: jsonText, names: [""] }]);
      else showError(form, summary, error.message, fields);
    }
  });
  return form;
}

// A PATCH carries only what changed: tool headers come back masked and must not be sent back.
function changes(before, after) {
  const out = {};
  for (const [key, value] of Object.entries(after)) {
    if (JSON.stringify(value) !== JSON.stringify(before[key])) out[key] = value;
  }
  return out;
}

function append(node, children) {
  node.append(...children);
}

async function versionsList(section, workflow) {
  const { data } = await get(`/v1/workflows/${workflow.id}/versions`);
  const message = h("p", { class: "error", role: "alert" });
  const items = data.map((version) =>
    h(
      "li",
      {},
      `Version ${version.version} · `,
      time(version.created_at),
      version.version === workflow.version
        ? h("span", { class: "muted" }, " (current)")
        : h("button", {
            type: "button",
            class: "small",
            onclick: async () => {
              try {
                await post(`/v1/workflows/${workflow.id}/versions/${version.version}/restore`);
                window.dispatchEvent(new HashChangeEvent("hashchange"));
              } catch (error) {
                replace(message, error.message);
              }
            },
          }, `Restore version ${version.version}`),
    ),
  );
  section.append(h("ol", { class: "versions", reversed: true }, items), message);
}
