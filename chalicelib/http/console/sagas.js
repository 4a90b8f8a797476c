// Sagas: the list (latest versions, with their executions by status) and a saga's page
// (versions, graph, statistics).
import { get, query } from "./api.js";
import { fill, h, json, when } from "./dom.js";
import { sagaGraph } from "./graph.js";
import { startForm } from "./start.js";

const STATS_POLL_MS = 5000;
const STATS_POLLS = 120; // ten minutes at most

// A fan-out's bounds as its definition sets them: "at most 4 at once, 10% may fail".
const fanoutBounds = (step) => [
  `at most ${step.max_concurrency ?? "saga.max_fanout_concurrency"} at once`,
  `${step.tolerated_failures ?? 0} may fail`].join(", ");

const rate = (value) => (value === null || value === undefined ? "—"
  : `${(value * 100).toFixed(1)} %`);

// Each count links to that saga's executions in that status (the saga filter kept).
function byStatus(summary, sagaId) {
  const counts = (summary && summary.by_status) || {};
  const items = Object.entries(counts).sort();
  if (!items.length) return h("span", { class: "muted" }, "none");
  return h("span", { class: "chips" }, items.map(([status, n]) =>
    h("a", { class: "chip", "data-status": status,
      href: `#/executions${query({ saga_id: sagaId, status })}` }, `${status.replaceAll("_", " ")} ${n}`)));
}

// At most `limit` requests in flight: a page of 100 sagas is 100 stats calls.
async function pooled(items, limit, work) {
  const results = new Array(items.length);
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      try { results[index] = await work(items[index]); } catch { results[index] = null; }
    }
  });
  await Promise.all(runners);
  return results;
}

export async function sagasPage(main, context, search) {
  const params = new URLSearchParams(search);
  const cursor = params.get("cursor") || "";
  const page = await get(`sagas${query({ limit: 50, cursor })}`);
  const stats = await pooled(page.items, 6, (saga) => get(`sagas/${encodeURIComponent(saga.id)}/stats`));
  const rows = page.items.map((saga, i) => {
    const summary = stats[i] ? stats[i].executions : null;
    return h("tr", { "data-saga": saga.id },
      h("td", {}, h("a", { href: `#/sagas/${encodeURIComponent(saga.id)}` }, saga.id),
        h("div", { class: "muted small" }, saga.name)),
      h("td", {}, saga.version),
      h("td", {}, saga.active ? "yes" : h("span", { class: "muted" }, "no")),
      h("td", {}, saga.type || "—"),
      h("td", {}, byStatus(summary, saga.id)),
      h("td", { class: "num" }, rate(summary && summary.success_rate)),
      h("td", {}, when(summary && summary.last_execution_at)));
  });
  fill(main, 
    h("h1", {}, "Sagas"),
    rows.length ? h("div", { class: "scroll" }, h("table", { class: "list" },
      h("thead", {}, h("tr", {}, ["Saga", "Version", "Active", "Type", "Executions by status",
        "Success", "Last run"].map((name) => h("th", { scope: "col" }, name)))),
      h("tbody", {}, rows)))
      : h("p", { class: "muted" }, "No sagas yet: POST one to /api/v1/saga/sagas."),
    h("nav", { class: "pager", "aria-label": "Pages" },
      cursor ? h("a", { href: "#/sagas" }, "First page") : null,
      page.next_cursor ? h("a", { href: `#/sagas${query({ cursor: page.next_cursor })}` },
        "Next page") : null));
  main.focus({ preventScroll: true });
}

export async function sagaPage(main, context, sagaId, search) {
  const params = new URLSearchParams(search);
  const version = params.get("version") || "";
  const id = encodeURIComponent(sagaId);
  const [saga, versions, stats] = await Promise.all([
    get(`sagas/${id}${query({ version })}`), get(`sagas/${id}/versions`), get(`sagas/${id}/stats`)]);
  const summary = stats.executions || {};
  const versionRows = versions.versions.map((v) => h("tr", {},
    h("td", {}, v.version === saga.version ? h("strong", {}, v.version)
      : h("a", { href: `#/sagas/${id}${query({ version: v.version })}` }, v.version)),
    h("td", {}, v.revision ?? "—"), h("td", { "data-workflow": v.workflow_type || "standard" },
      v.workflow_type || "standard"), h("td", {}, when(v.created_at))));
  fill(main, 
    h("p", { class: "crumbs" }, h("a", { href: "#/sagas" }, "Sagas"), " / ", saga.id),
    h("h1", {}, saga.name, " ", h("span", { class: "muted" }, saga.version)),
    saga.description ? h("p", {}, saga.description) : null,
    h("dl", { class: "facts" },
      h("dt", {}, "Active"), h("dd", {}, saga.active ? "yes" : "no"),
      h("dt", {}, "Type"), h("dd", {}, saga.type || "—"),
      // Express or Standard, as chosen when the version was stored, and why.
      h("dt", {}, "Workflow"), h("dd", { "data-testid": "workflow" }, saga.workflow_type || "standard",
        saga.workflow && saga.workflow !== saga.workflow_type ? ` (${saga.workflow}: ${saga.workflow_reason})` : "",
        saga.forward_worst_case_s != null ? h("span", { class: "muted small" },
          ` · forward path at most ${saga.forward_worst_case_s} s`) : "",
        ...(saga.warnings || []).map((text) => h("div", { class: "small warning" }, text))),
      // The whole saga's bound: what completed is compensated when it passes.
      h("dt", {}, "Deadline"), h("dd", { "data-testid": "deadline" },
        saga.deadline ? `${saga.deadline} from the start (then compensated; parked past the pivot)` : "none"),
      h("dt", {}, "Steps"), h("dd", { "data-testid": "step-counts" },
        `${stats.active_steps} active of ${stats.steps}`,
        stats.conditional_steps ? ` · ${stats.conditional_steps} conditional` : "",
        stats.fanout_steps ? ` · ${stats.fanout_steps} fan-out` : ""),
      h("dt", {}, "Executions"), h("dd", {}, String(summary.executions ?? 0), " ",
        h("a", { href: `#/executions${query({ saga_id: saga.id })}` }, "list them")),
      h("dt", {}, "By status"), h("dd", { "data-testid": "by-status" }, byStatus(summary, saga.id)),
      h("dt", {}, "Running"), h("dd", {}, String(summary.running ?? 0)),
      h("dt", {}, "Success rate"), h("dd", {}, rate(summary.success_rate)),
      h("dt", {}, "Last run"), h("dd", {}, when(summary.last_execution_at))),
    startForm(saga, context.me),
    h("h2", {}, "Steps"),
    h("div", { class: "scroll graph-box", "data-testid": "saga-graph" }, sagaGraph(saga)),
    h("div", { class: "scroll" }, h("table", { class: "list" },
      h("thead", {}, h("tr", {}, ["Order", "Step", "Kind", "Action", "Compensation", "Retries",
        "Timeout", "Runs when", "For each", "Active"].map((name) => h("th", { scope: "col" }, name)))),
      h("tbody", {}, [...saga.steps].sort((a, b) => a.order - b.order).map((step) => h("tr", {},
        h("td", { class: "num" }, step.order), h("td", {}, step.name || step.id,
          h("div", { class: "muted small" }, step.id)),
        h("td", {}, step.kind || "compensatable"),
        h("td", {}, h("code", {}, step.action)),
        h("td", {}, step.compensation ? h("code", {}, step.compensation) : "none: only forward"),
        h("td", { class: "num" }, step.max_retries ?? (step.kind === "retriable"
          ? "saga.retriable_max_attempts" : "—")), h("td", {}, step.timeout ?? "—"),
        h("td", { "data-when": step.id }, step.when != null ? h("code", {}, step.when) : "always"),
        h("td", { "data-for-each": step.id }, step.for_each != null ? [h("code", {}, step.for_each),
          h("div", { class: "muted small" }, fanoutBounds(step))] : "—"),
        h("td", {}, step.active === false ? "no" : "yes")))))),
    h("h2", {}, "Versions"),
    h("table", { class: "list narrow" }, h("thead", {}, h("tr", {},
      ["Version", "Revision", "Workflow", "Stored"].map((name) => h("th", { scope: "col" }, name)))),
    h("tbody", {}, versionRows)),
    h("details", {}, h("summary", {}, "Definition (JSON)"), json(saga)));
  main.focus({ preventScroll: true });
  // Counts change as executions run: refresh them from the live feed, at most every 2 s.
  let pending = null;
  const refresh = () => {
    if (pending) return;
    pending = setTimeout(async () => {
      pending = null;
      try {
        const fresh = await get(`sagas/${id}/stats`);
        const cell = main.querySelector('[data-testid="by-status"]');
        if (cell) cell.replaceChildren(byStatus(fresh.executions, saga.id));
      } catch { /* the next event tries again */ }
    }, 2000);
  };
  const stop = context.live ? context.live.subscribe(`saga:${saga.id}`, refresh) : () => {};
  // The counts come from the read model, which may still be projecting events the feed
  // pushed before this page subscribed: read them again now and then (a bounded number of
  // times), so a page opened just after a run ended does not show its counts without it.
  let polls = 0;
  const poller = setInterval(() => {
    polls += 1;
    if (polls > STATS_POLLS) clearInterval(poller);
    else refresh();
  }, STATS_POLL_MS);
  return () => { stop(); clearTimeout(pending); clearInterval(poller); };
}
