// Executions: newest first, filtered by saga, status and a time range, 50 to a page, with
// the counts by status. The first page follows the live feed.
import { get, query } from "./api.js";
import { badge, fill, h, span, STATUSES, time, when } from "./dom.js";
import { findForm } from "./find.js";

const PAGE = 50;

export async function executionsPage(main, context, search) {
  const params = new URLSearchParams(search);
  const filters = { saga_id: params.get("saga_id") || "", status: params.get("status") || "",
    from: params.get("from") || "", to: params.get("to") || "" };
  const cursor = params.get("cursor") || "";
  const back = params.get("back") || ""; // the cursors of earlier pages, for "Previous"
  // The range inputs are in the browser's local time; the API takes instants with a zone.
  const instant = (local) => (local && !Number.isNaN(Date.parse(local))
    ? new Date(local).toISOString() : "");
  const [page, sagas, counts] = await Promise.all([
    get(`executions${query({ saga_id: filters.saga_id, status: filters.status,
      started_after: instant(filters.from), started_before: instant(filters.to), limit: PAGE,
      cursor })}`),
    get("sagas?limit=100"),
    filters.saga_id ? get(`sagas/${encodeURIComponent(filters.saga_id)}/stats`).then((s) => s.executions)
      : get("stats").then((s) => s.executions)]);
  const items = page.items;
  const more = Boolean(page.next_cursor);

  const link = (extra) => `#/executions${query({ ...filters, ...extra })}`;
  const form = h("form", { class: "filters", onsubmit: (event) => {
    event.preventDefault();
    const data = new FormData(event.target);
    location.hash = link(Object.fromEntries([...data.entries()].map(([k, v]) => [k, String(v)])));
  } },
  // Any saga id may be typed; the first 100 are offered as suggestions.
  h("label", {}, "Saga", h("input", { name: "saga_id", list: "saga-ids", value: filters.saga_id,
    placeholder: "any", autocomplete: "off", spellcheck: "false", "data-testid": "saga-filter" }),
  h("datalist", { id: "saga-ids" }, sagas.items.map((saga) => h("option", { value: saga.id })))),
  h("label", {}, "Status", h("select", { name: "status" }, h("option", { value: "" }, "any"),
    STATUSES.map((status) => h("option", { value: status, selected: status === filters.status },
      status)))),
  h("label", {}, "Started from", h("input", { type: "datetime-local", name: "from", value: filters.from })),
  h("label", {}, "to", h("input", { type: "datetime-local", name: "to", value: filters.to })),
  h("button", { type: "submit", class: "primary" }, "Filter"),
  h("a", { href: "#/executions" }, "Clear"));

  const byStatus = (counts && counts.by_status) || {};
  const chips = h("p", { class: "chips", "aria-label": "Executions by status" },
    h("span", {}, `${counts && counts.executions !== undefined ? counts.executions : "?"} in all:`),
    STATUSES.filter((status) => byStatus[status]).map((status) => h("a", { class: "chip",
      "data-status": status, href: link({ status, cursor: "" }) },
    `${status.replaceAll("_", " ")} ${byStatus[status]}`)));

  const rows = items.map((e) => h("tr", { "data-execution": e.id },
    h("td", {}, h("a", { href: `#/executions/${encodeURIComponent(e.id)}` }, e.id.slice(0, 8)),
      h("span", { class: "muted small" }, e.id.slice(8, 13) ? "…" : "")),
    h("td", {}, h("a", { href: `#/sagas/${encodeURIComponent(e.saga_id)}` }, e.saga_id),
      h("span", { class: "muted small" }, ` ${e.version}`)),
    h("td", {}, badge(e.status)),
    h("td", {}, when(e.started_at)),
    h("td", { class: "num" }, e.ended_at ? span(time(e.ended_at) - time(e.started_at)) : "running"),
    h("td", { class: "small" }, e.error ? `${e.error.step_id || ""} ${e.error.type}` : "")));
  const backs = back ? back.split(",") : [];
  fill(main, 
    h("h1", {}, "Executions"), findForm(), form, chips,
    rows.length ? h("div", { class: "scroll" }, h("table", { class: "list" },
      h("thead", {}, h("tr", {}, ["Execution", "Saga", "Status", "Started", "Took", "Error"]
        .map((name) => h("th", { scope: "col" }, name)))), h("tbody", {}, rows)))
      : h("p", { class: "muted" }, "No executions match."),
    h("nav", { class: "pager", "aria-label": "Pages" },
      backs.length ? h("a", { href: link({ cursor: backs[backs.length - 1] === "-" ? "" : backs[backs.length - 1],
        back: backs.slice(0, -1).join(",") }) }, "Previous page") : null,
      more ? h("a", { href: link({ cursor: page.next_cursor,
        back: [...backs, cursor || "-"].join(",") }) }, "Next page") : null,
      h("span", { class: "muted small" }, `${items.length} on this page`)));
  main.focus({ preventScroll: true });
  if (cursor || !context.live) return () => {};
  // The first page follows the feed: a new or changed execution reloads it, at most every 2 s.
  let pending = null;
  const topic = filters.saga_id ? `saga:${filters.saga_id}` : "all";
  const stop = context.live.subscribe(topic, () => {
    if (pending) return;
    pending = setTimeout(() => { pending = null; if (!document.activeElement.closest("form")) window.onhashchange(); }, 2000);
  });
  return () => { stop(); clearTimeout(pending); };
}
