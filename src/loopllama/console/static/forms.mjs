// Form helpers: labelled fields and the API's validation message shown next to the field it
// names. The API answers with its first problem only, worded like zod and without a path; when
// the message names a field ("Unknown model ...", "Unrecognized key(s) in object: 'x'"), or when
// exactly one required field is empty, the message goes under that field too.

import { h, replace } from "./dom.mjs";

let counter = 0;

export function field(label, control, hint) {
  const id = control.id || `f${++counter}`;
  control.id = id;
  const message = h("p", { class: "field-error", id: `${id}-error`, "aria-live": "polite" });
  control.setAttribute("aria-describedby", `${id}-error${hint ? ` ${id}-hint` : ""}`);
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    control,
    hint ? h("p", { class: "muted hint", id: `${id}-hint` }, hint) : null,
    message,
  );
}

export function clearErrors(form) {
  for (const node of form.querySelectorAll(".field-error")) replace(node);
  for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
}

// `fields`: [{control, names: [words the API uses for it], required}]. Returns the control the
// message was attached to, or null.
export function showError(form, summary, message, fields) {
  replace(summary, message);
  const lower = message.toLowerCase();
  // The field named first: "Unknown model 'x': name a provider ..." is about the model.
  let target = null;
  let first = Infinity;
  for (const f of fields) {
    for (const name of f.names) {
      const at = name ? lower.indexOf(name.toLowerCase()) : -1;
      if (at >= 0 && at < first) [target, first] = [f, at];
    }
  }
  if (!target && /at least 1 character|required/i.test(message)) {
    const empty = fields.filter((f) => f.required && f.control.value.trim() === "");
    if (empty.length === 1) target = empty[0];
  }
  if (!target) return null;
  target.control.setAttribute("aria-invalid", "true");
  replace(form.querySelector(`#${target.control.id}-error`), message);
  target.control.focus();
  return target.control;
}
