// The console's shell: sign-in, the hash router and the connectivity banner. Each page lives in
// its own module and renders into <main>; a page may return a cleanup function (the run page
// closes its stream).

import { ApiError, get, onConnectivity, session } from "./api.mjs";
import { h, replace } from "./dom.mjs";
import { runPage } from "./run.mjs";
import { runsPage } from "./runs.mjs";
import { webhookPage, webhooksPage } from "./webhooks.mjs";
import { workflowPage, workflowsPage } from "./workflows.mjs";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const banner = document.getElementById("banner");
let cleanup = null;

const routes = [
  [/^#\/workflows\/?$/, () => workflowsPage(main)],
  [/^#\/workflows\/new$/, () => workflowPage(main, null)],
  [/^#\/workflows\/([^/?]+)$/, (id) => workflowPage(main, id)],
  [/^#\/runs\/?(?:\?.*)?$/, () => runsPage(main, params())],
  [/^#\/runs\/([^/?]+)$/, (id) => runPage(main, id)],
  [/^#\/webhooks\/?$/, () => webhooksPage(main)],
  [/^#\/webhooks\/([^/?]+)$/, (id) => webhookPage(main, id)],
];

function params() {
  const hash = location.hash;
  const at = hash.indexOf("?");
  return new URLSearchParams(at < 0 ? "" : hash.slice(at + 1));
}

async function render() {
  if (cleanup) cleanup();
  cleanup = null;
  if (!session.key) return signIn();
  nav.hidden = false;
  const hash = location.hash || "#/workflows";
  markCurrent(hash);
  for (const [pattern, page] of routes) {
    const match = pattern.exec(hash);
    if (!match) continue;
    try {
      cleanup = (await page(...match.slice(1).map(decodeURIComponent))) || null;
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      replace(main, h("h1", {}, "Something went wrong"), h("p", { role: "alert", class: "error" }, error.message));
    }
    return;
  }
  replace(main, h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/workflows" }, "Back to workflows")));
}

function markCurrent(hash) {
  for (const link of nav.querySelectorAll("a")) {
    const current = hash.startsWith(link.getAttribute("href"));
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function signIn(message) {
  nav.hidden = true;
  const input = h("input", {
    id: "api-key",
    name: "api-key",
    type: "password",
    autocomplete: "off",
    required: true,
    "aria-describedby": "api-key-help",
  });
  const error = h("p", { id: "sign-in-error", class: "error", role: "alert" }, message || "");
  const form = h(
    "form",
    { class: "card narrow", "aria-labelledby": "sign-in-title" },
    h("h1", { id: "sign-in-title" }, "Sign in"),
    h("label", { for: "api-key" }, "API key"),
    input,
    h(
      "p",
      { id: "api-key-help", class: "muted" },
      "Create one with `loopllama keys create`. It is kept in this tab's session storage only and sent as the Authorization header.",
    ),
    h("button", { type: "submit" }, "Sign in"),
    error,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    session.signIn(input.value.trim());
    try {
      await get("/v1/workflows?limit=1");
    } catch (failure) {
      session.signOut();
      replace(error, failure.message);
      input.focus();
      return;
    }
    if (!location.hash || location.hash === "#/") location.hash = "#/workflows";
    else render();
  });
  replace(main, form);
  input.focus();
}

document.getElementById("sign-out").addEventListener("click", () => {
  session.signOut();
  location.hash = "#/workflows";
  render();
});

window.addEventListener("unauthorized", (event) => {
  session.signOut();
  if (cleanup) cleanup();
  cleanup = null;
  signIn(event.detail);
});

onConnectivity((online) => {
  if (!online) {
    banner.hidden = false;
    replace(banner, "Connection to the server lost. Reconnecting…");
    return;
  }
  replace(banner, "Connection restored.");
  setTimeout(() => (banner.hidden = true), 2000);
  if (!location.hash.startsWith("#/runs/")) render(); // the run page resumes its own stream
});

window.addEventListener("hashchange", () => {
  render();
  main.focus({ preventScroll: true });
});
render();
