// Runs: across all workflows or one, newest first, filtered by status, paged with `after`.

import { get, query } from "./api.mjs";
import { badge, cost, h, replace, time } from "./dom.mjs";

const STATUSES = ["queued", "running", "waiting_input", "completed", "failed", "cancelled"];

export async function runsPage(main, params) {
  const section = h("section", { "aria-labelledby": "runs-title" }, h("h1", { id: "runs-title" }, "Runs"));
  replace(main, section);
  await runsTable(section, { workflow_id: params.get("workflow_id"), status: params.get("status") }, true);
}

// `inUrl`: the filter lives in the page's address (the Runs page); else it is local (a
// workflow's page).
export async function runsTable(section, filter, inUrl = false) {
  const select = h(
    "select",
    { id: `status-${filter.workflow_id || "all"}` },
    h("option", { value: "" }, "any status"),
    STATUSES.map((status) => h("option", { value: status, selected: status === filter.status }, status.replaceAll("_", " "))),
  );
  const body = h("tbody");
  const more = h("button", { type: "button", hidden: true }, "Load more");
  const message = h("p", { class: "error", role: "alert" });
  const empty = h("p", { class: "muted", hidden: true }, "No runs.");
  let after = null;
  const load = async () => {
    const path = `/v1/runs${query({ workflow_id: filter.workflow_id, status: filter.status, limit: 50, after })}`;
    try {
      const { data, has_more } = await get(path);
      for (const run of data) body.append(row(run));
      after = data.length ? data[data.length - 1].id : after;
      more.hidden = !has_more;
      empty.hidden = body.children.length > 0;
    } catch (error) {
      replace(message, error.message);
    }
  };
  select.addEventListener("change", () => {
    filter.status = select.value || null;
    if (inUrl) {
      location.hash = `#/runs${query({ workflow_id: filter.workflow_id, status: filter.status })}`;
      return;
    }
    body.replaceChildren();
    after = null;
    load();
  });
  more.addEventListener("click", load);
  section.append(
    h("div", { class: "filters" }, h("label", { for: select.id }, "Status"), select),
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        {},
        h("thead", {}, h("tr", {}, ["Run", "Status", "Workflow", "Created", "Tokens", "Cost"].map((t) => h("th", { scope: "col" }, t)))),
        body,
      ),
    ),
    empty,
    more,
    message,
  );
  await load();
}

function row(run) {
  return h(
    "tr",
    {},
    h("td", {}, h("a", { href: `#/runs/${run.id}`, class: "mono" }, run.id)),
    h("td", {}, badge(run.status)),
    h("td", {}, h("a", { href: `#/workflows/${run.workflow_id}`, class: "mono" }, run.workflow_id)),
    h("td", {}, time(run.created_at)),
    h("td", {}, `${run.tokens_in} in · ${run.tokens_out} out`),
    h("td", {}, cost(run) ?? "—"),
  );
}
