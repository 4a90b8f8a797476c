// An execution's history on its page: every event it published, in sequence (GET
// /executions/{id}/history), with who acted and why, filtered by type or step as one types.
// The section is made once and kept across the page's redraws (its filter keeps its text and
// focus); the page calls refresh() when its live events arrive.
import { get, query } from "./api.js";
import { h, json, problemBox, time } from "./dom.js";

const PAGE = 100;
const MAX_PAGES = 20; // 2,000 events at most on a page

async function readAll(executionId) {
  const items = [];
  let cursor = "";
  for (let page = 0; page < MAX_PAGES; page += 1) {
    const body = await get(`executions/${encodeURIComponent(executionId)}/history` +
      query({ limit: PAGE, cursor }));
    items.push(...body.items);
    cursor = body.next_cursor || "";
    if (!cursor) return { items, more: false };
  }
  return { items, more: true };
}

// The event's time as the rest of the console writes times (ISO 8601 in UTC, with its zone),
// to the millisecond: events of one second keep their order readable.
function stamp(iso) {
  const t = time(iso);
  return t === null || Number.isNaN(t) ? String(iso) : new Date(t).toISOString();
}

function why(item) {
  const parts = [];
  if (item.reason) parts.push(item.reason);
  if (item.error) parts.push(`${item.error.type || "Error"}: ${item.error.message || ""}`);
  return parts.join(" · ");
}

function matches(item, text) {
  if (!text) return true;
  const needle = text.toLowerCase();
  return [item.type, item.step_id].some((field) => field && field.toLowerCase().includes(needle));
}

function row(item) {
  return h("tr", { "data-sequence": item.sequence, "data-type": item.type },
    h("td", { class: "num" }, item.sequence),
    h("td", { class: "small" }, stamp(item.time)),
    h("td", {}, h("code", {}, item.type)),
    h("td", {}, item.step_id || ""),
    h("td", { class: "num" }, item.attempt || ""),
    h("td", { "data-actor": item.actor || null }, item.actor || ""),
    h("td", { class: "small", "data-why": "" }, why(item)),
    h("td", {}, h("details", {}, h("summary", {}, "data"), json(item.data))));
}

export function historySection(executionId) {
  let items = [], more = false, problem = null, pending = null, stopped = false;
  const filter = h("input", { type: "search", id: "history-filter", "data-testid": "history-filter",
    placeholder: "type or step", "aria-label": "Filter the history by event type or step" });
  const body = h("tbody", {});
  const status = h("p", { class: "muted small", role: "status" });
  const element = h("section", { "data-testid": "history", "aria-labelledby": "history-title" },
    h("h2", { id: "history-title" }, "History"),
    h("p", { class: "filters" }, h("label", { for: "history-filter" }, "Filter "), filter),
    h("div", { class: "scroll" }, h("table", { class: "list" }, h("thead", {}, h("tr", {},
      ["#", "Time", "Event", "Step", "Attempt", "By", "Reason / error", "Data"]
        .map((name) => h("th", { scope: "col" }, name)))), body)),
    status);

  const draw = () => {
    const shown = items.filter((item) => matches(item, filter.value.trim()));
    body.replaceChildren(...shown.map(row));
    status.replaceChildren(problem ? problemBox(problem)
      : `${shown.length} of ${items.length} events${more ? " (the first 2,000)" : ""}`);
  };
  filter.addEventListener("input", draw);

  const load = async () => {
    try {
      ({ items, more } = await readAll(executionId));
      problem = null;
    } catch (error) {
      problem = `The history could not be read: ${error.message}`;
    }
    if (!stopped) draw();
  };
  // Bursts of live events are read once.
  const refresh = (delay = 300) => {
    if (pending || stopped) return;
    pending = setTimeout(() => { pending = null; load(); }, delay);
  };
  draw();
  load();
  return { element, refresh, focused: () => element.contains(document.activeElement),
    focus: () => filter.focus({ preventScroll: true }),
    stop: () => { stopped = true; clearTimeout(pending); } };
}
