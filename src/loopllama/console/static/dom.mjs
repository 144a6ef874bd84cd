// Building DOM nodes. Text always goes in as text nodes (never parsed as HTML), so anything the API
// returns, agent output included, shows as the characters it is: escaping by construction.

export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function replace(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

// Times in the browser's own time zone and locale.
const stamp = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
export function time(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return h("time", { datetime: iso, title: iso }, stamp.format(date));
}

export function duration(from, to) {
  if (!from) return "—";
  const ms = (to ? new Date(to) : new Date()) - new Date(from);
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

export function badge(status) {
  return h("span", { class: `badge badge-${status}` }, status.replaceAll("_", " "));
}

// Cost arrives with the cost feature; shown when the API sends it, absent otherwise.
export function cost(object) {
  if (object?.cost_usd === undefined || object.cost_usd === null) return null;
  return `$${Number(object.cost_usd).toFixed(4)}`;
}

export function json(value) {
  return JSON.stringify(value, null, 2);
}
