// Small DOM helpers: elements from tags, attributes and children (text is always text, never HTML).
const SVG_NS = "http://www.w3.org/2000/svg";

function build(element, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      element.addEventListener(key.slice(2), value);
    } else {
      element.setAttribute(key, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export const h = (tag, attrs, ...children) => build(document.createElement(tag), attrs, children);
export const s = (tag, attrs, ...children) =>
  build(document.createElementNS(SVG_NS, tag), attrs, children);

// Times come with microseconds; Date wants at most milliseconds.
export function time(iso) {
  if (!iso) return null;
  return Date.parse(String(iso).replace(/(\.\d{3})\d+/, "$1"));
}

// ISO 8601 in UTC to the second, with its zone (2026-12-07T14:31:20Z): the same text as the
// API, the CLI and the logs, whatever the browser's locale.
export function when(iso) {
  const t = time(iso);
  return t === null || Number.isNaN(t) ? "—" : new Date(t).toISOString().replace(/\.\d{3}Z$/, "Z");
}

// A time of day in UTC (14:31:20Z), with its date when it is not today's.
export function clock(iso) {
  const t = time(iso);
  if (t === null || Number.isNaN(t)) return "—";
  const full = when(iso);
  return full.slice(0, 10) === new Date().toISOString().slice(0, 10) ? full.slice(11) : full;
}

export function span(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

// The lifecycle's rules, as the service wrote them into the page (chalicelib/http/console.py, from
// chalicelib/domain/lifecycle.py): never spelled here, so the two cannot drift.
const LIFECYCLE = JSON.parse(document.getElementById("lifecycle").textContent);
export const STATUSES = LIFECYCLE.statuses;
export const FINAL = new Set(LIFECYCLE.final);
// Operator action name -> the statuses it starts from.
export const ACTION_SOURCES = LIFECYCLE.actions;
// A step's statuses (in the lifecycle's order), those with an attempt at work, the status of
// a step that waits, and of one whose `when` was false.
export const STEP_STATUSES = LIFECYCLE.steps.statuses;
export const STEP_AT_WORK = new Set(LIFECYCLE.steps.at_work);
export const STEP_WAITING = LIFECYCLE.steps.waiting;
export const STEP_SKIPPED = LIFECYCLE.steps.skipped;
// The kinds of wait: WAIT_KINDS.callback, WAIT_KINDS.timer.
export const WAIT_KINDS = LIFECYCLE.wait_kinds;
// The events after which the open approvals may differ (the header's count is read again).
export const APPROVAL_EVENTS = new Set(LIFECYCLE.approval_events);

export const badge = (status) =>
  h("span", { class: "badge", "data-status": status }, status.replaceAll("_", " "));

export const json = (value) => h("pre", { class: "json" }, JSON.stringify(value, null, 2));

export function problemBox(message) {
  return h("p", { class: "problem", role: "alert" }, message);
}

// replaceChildren would print a skipped part (null, false) as text.
export function fill(target, ...children) {
  target.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false)
    .map((c) => (c instanceof Node ? c : document.createTextNode(String(c)))));
}
