// The triage queue (#/attention): executions a person must look at, as the lifecycle defines
// them (GET /executions?needs_attention=true), and the nav link's badge with their count. Both
// follow the live feed: an event that moves an execution's status or records an operator's
// decision reads the queue again (at most every 2 s).
import { get, query } from "./api.js";
import { badge, fill, h, when } from "./dom.js";

const PAGE = 100;
const SETTLE_MS = 2000;

const readQueue = () => get(`executions${query({ needs_attention: "true", limit: PAGE })}`);

// An event that may move an execution in or out of the queue: it carries a status, who
// decided (a resolve, a retry, a completed approval), or a step's wait (an approval begins).
const moves = (event) => Boolean(event.data && (event.data.status || event.data.by ||
  (event.data.step && event.data.step.waiting)));

function followed(live, reload) {
  if (!live) return () => {};
  let pending = null;
  const stop = live.subscribe("all", (event) => {
    if (!moves(event) || pending) return;
    pending = setTimeout(() => { pending = null; reload(); }, SETTLE_MS);
  });
  const stopState = live.onState((state) => { if (state === "on") reload(); });
  return () => { stop(); stopState(); clearTimeout(pending); };
}

// The nav link's count: kept for the console's whole life.
export function attentionBadge(context, link) {
  const count = h("span", { class: "chip count", "data-testid": "attention-count",
    "aria-label": "executions needing attention" }, "…");
  link.append(" ", count);
  const reload = async () => {
    try {
      const page = await readQueue();
      count.textContent = `${page.items.length}${page.next_cursor ? "+" : ""}`;
      count.dataset.count = String(page.items.length);
    } catch {
      count.textContent = "?";
    }
  };
  reload();
  return followed(context.live, reload);
}

export async function attentionPage(main, context) {
  let closed = false;
  const draw = (page) => {
    const rows = page.items.map((e) => h("tr", { "data-execution": e.id },
      h("td", {}, h("a", { href: `#/executions/${encodeURIComponent(e.id)}` }, e.id)),
      h("td", {}, h("a", { href: `#/sagas/${encodeURIComponent(e.saga_id)}` }, e.saga_id)),
      h("td", {}, badge(e.status)),
      h("td", {}, when(e.updated_at)),
      h("td", { class: "small" }, e.error ? `${e.error.step_id || ""} ${e.error.type}: ${e.error.message}` : "")));
    fill(main,
      h("h1", {}, "Needs attention"),
      h("p", { class: "muted" }, "Executions whose compensation failed, that are parked past " +
        "their pivot, or that timed out, and that no one has resolved yet, and running ones " +
        "whose approval step waits for a person. Open one to retry, resolve or decide it; its " +
        "history says who did what, and why."),
      rows.length ? h("div", { class: "scroll" }, h("table", { class: "list", "data-testid": "attention" },
        h("thead", {}, h("tr", {}, ["Execution", "Saga", "Status", "Since", "Why"]
          .map((name) => h("th", { scope: "col" }, name)))), h("tbody", {}, rows)))
        : h("p", { class: "muted", "data-testid": "attention-empty" }, "Nothing needs attention."),
      page.next_cursor ? h("p", { class: "muted small" },
        `The first ${PAGE}: GET /executions?needs_attention=true pages the rest.`) : null);
  };
  draw(await readQueue());
  main.focus({ preventScroll: true });
  const stop = followed(context.live, async () => {
    try {
      const page = await readQueue();
      if (!closed && !main.contains(document.activeElement.closest("a"))) draw(page);
    } catch { /* the next event tries again */ }
  });
  return () => { closed = true; stop(); };
}
