// Approvals: the callback steps with no action that wait for a person (GET /callbacks?approval=
// true), oldest first, each with its saga, execution, step, since and until, and what it
// decides on. Approve (an optional comment) or Reject (a comment required: it becomes the
// execution's reason), each behind a confirmation, for a role that may (GET /whoami: approver
// or above), disabled with the reason otherwise. The header's count follows the live feed.
import { call, explain, get, query } from "./api.js";
import { confirm } from "./actions.js";
import { APPROVAL_EVENTS, fill, h, json, problemBox, STEP_WAITING, time, when } from "./dom.js";

const PAGE = 50;
const SOON_MS = 300; // a burst of events is read once

const DECISIONS = [
  { name: "approve", label: "Approve", done: "Approved", reason: "optional",
    reasonLabel: "Comment (optional, up to 500 characters)",
    text: "Approve: the step succeeds with {approved: true} and your comment, and the saga goes on.",
    run: (id, comment) => call("POST", `callbacks/${encodeURIComponent(id)}/succeed`,
      { result: { approved: true, comment: comment || null } }) },
  { name: "reject", label: "Reject", done: "Rejected", reason: "required",
    reasonLabel: "Comment (3 to 500 characters): why it is rejected",
    reasonProblem: "A rejection needs a comment of at least 3 characters: it is the execution's reason.",
    text: "Reject: the step fails with your comment as the reason, and the steps before it are compensated.",
    run: (id, comment) => call("POST", `callbacks/${encodeURIComponent(id)}/fail`,
      { error: "Rejected", reason: comment }) },
];

// "under a minute", "3 min", "5 h", "2 d": how long ago or how far off.
function about(ms) {
  const minutes = Math.max(0, Math.round(ms / 60000));
  if (minutes < 1) return "under a minute";
  if (minutes < 120) return `${minutes} min`;
  const hours = Math.round(minutes / 60);
  return hours < 48 ? `${hours} h` : `${Math.round(hours / 24)} d`;
}

// The Approve and Reject buttons of one waiting approval: say(text, ok) tells the outcome,
// after() follows it (the page reads again).
export function decisionButtons(callbackId, me, say, after) {
  const allowed = new Set(me.actions || []);
  const may = DECISIONS.every((decision) => allowed.has(decision.name));
  const why = may ? null : `Your role (${me.role}) may not approve or reject: that needs approver or above.`;
  const buttons = DECISIONS.map((decision) => h("button", { type: "button",
    class: decision.name === "approve" ? "primary" : null, "data-decision": decision.name,
    "data-callback": callbackId, disabled: !may, title: why, onclick: async (event) => {
      const chosen = await confirm(decision);
      if (!chosen) { event.target.focus(); return; }
      say("Sending…", "");
      try {
        const { status, body } = await decision.run(callbackId, chosen.reason);
        say(`${decision.done}: the service answered ${status}; step ${body.step_id} of execution ` +
          `${body.execution_id} is ${body.step_status}.`, "true");
      } catch (error) {
        say(`${decision.label}: ${explain(error)}`, "false");
      }
      after();
    } }, decision.label));
  return h("span", { class: "decisions" }, buttons,
    why ? h("span", { class: "muted small", "data-testid": "decision-why" }, why) : null);
}

const decidesOn = (input) => (input ? json(input)
  : h("span", { class: "muted small" }, "too large to keep with the wait: see the execution's input"));

// The waiting approvals of an execution's page, each with its buttons (memo keeps the last
// answer across the page's re-renders, after the step stopped waiting).
export function approvalPanels(execution, me, memo, after) {
  const waiting = (execution.steps || []).filter((step) => step.status === STEP_WAITING &&
    step.waiting && step.waiting.approval && step.waiting.callback_id && !step.waiting.completed_at);
  const answer = h("p", { class: "answer", role: "status", "aria-live": "polite",
    "data-testid": "decision-answer", "data-ok": memo.ok || "" }, memo.text || "");
  const say = (text, ok) => { memo.text = text; memo.ok = ok; answer.textContent = text; answer.dataset.ok = ok; };
  if (!waiting.length) return memo.text ? answer : null;
  return [waiting.map((step) => h("section", { class: "approval", "data-testid": "approval",
    "data-step": step.step_id, "aria-label": `approval of step ${step.step_id}` },
  h("h2", {}, `Waiting for approval: ${step.step_id}`),
  h("p", { class: "small" }, `Since ${when(step.waiting.since)}; until ${when(step.waiting.until)} ` +
    `(ends in ${about(time(step.waiting.until) - Date.now())}). It decides on:`),
  decidesOn(step.waiting.input),
  decisionButtons(step.waiting.callback_id, me, say, after))), answer];
}

// The header's count of open approvals, read again after the events that may change it.
// Returns the function that reads it again soon.
export function approvalCount(live) {
  const badge = document.getElementById("approvals-count");
  const link = document.getElementById("approvals-link");
  let pending = null;
  const read = async () => {
    try {
      const { total } = await get(`callbacks/count${query({ approval: "true" })}`);
      badge.textContent = total ? String(total) : "";
      badge.dataset.count = String(total);
      badge.hidden = !total;
      link.setAttribute("aria-label", `Approvals: ${total} waiting`);
    } catch { /* the count stays as it was; the view says what is wrong */ }
  };
  const soon = () => {
    if (pending) return;
    pending = setTimeout(() => { pending = null; read(); }, SOON_MS);
  };
  read();
  if (live) {
    live.subscribe("all", (event) => { if (APPROVAL_EVENTS.has(event.type)) soon(); });
    live.onState((state) => { if (state === "on") soon(); });
  }
  return soon;
}

function row(item, context, say, after) {
  const id = encodeURIComponent;
  return h("tr", { "data-callback": item.callback_id, "data-execution": item.execution_id },
    h("td", {}, h("a", { href: `#/sagas/${id(item.saga_id)}?version=${id(item.version)}` }, item.saga_id),
      h("span", { class: "muted small" }, ` ${item.version}`)),
    h("td", {}, h("a", { href: `#/executions/${id(item.execution_id)}`, "data-testid": "execution-link" },
      item.execution_id.slice(0, 8)), h("span", { class: "muted small" }, "…")),
    h("td", {}, h("strong", {}, item.step_name || item.step_id),
      item.step_description ? h("div", { class: "muted small" }, item.step_description) : null),
    h("td", {}, when(item.since), h("div", { class: "muted small" }, `waiting ${about(Date.now() - time(item.since))}`)),
    h("td", {}, when(item.until), h("div", { class: "muted small" }, `ends in ${about(time(item.until) - Date.now())}`)),
    h("td", { class: "decides-on" }, decidesOn(item.input)),
    h("td", {}, decisionButtons(item.callback_id, context.me, say, after)));
}

export async function approvalsPage(main, context, search) {
  const cursor = new URLSearchParams(search).get("cursor") || "";
  const answer = h("p", { class: "answer", role: "status", "aria-live": "polite", "data-testid": "decision-answer" });
  const say = (text, ok) => { answer.textContent = text; answer.dataset.ok = ok; };
  let closed = false, pending = null;
  const render = (page) => {
    const after = () => { if (context.approvals) context.approvals(); refresh(0); };
    fill(main, h("h1", {}, "Waiting for approval"),
      h("p", { class: "muted" }, `${page.total} approval${page.total === 1 ? "" : "s"} waiting, ` +
        "the longest waiting first. Approving lets the saga go on; rejecting compensates the steps before."),
      answer,
      page.items.length ? h("div", { class: "scroll" }, h("table", { class: "list approvals" },
        h("thead", {}, h("tr", {}, ["Saga", "Execution", "Step", "Since", "Until", "Decides on", ""]
          .map((name) => h("th", { scope: "col" }, name)))),
        h("tbody", {}, page.items.map((item) => row(item, context, say, after)))))
        : h("p", { class: "muted", "data-testid": "no-approvals" }, "Nothing waits for approval."),
      h("nav", { class: "pager", "aria-label": "Pages" },
        cursor ? h("a", { href: "#/approvals" }, "First page") : null,
        page.next_cursor ? h("a", { href: `#/approvals${query({ cursor: page.next_cursor })}` }, "Next page") : null));
  };
  const load = async () => {
    const page = await get(`callbacks${query({ approval: "true", limit: PAGE, cursor })}`);
    if (!closed) render(page);
  };
  // Read again after an approval's event (not while the confirmation is open).
  const refresh = (delay = SOON_MS) => {
    if (pending || closed) return;
    pending = setTimeout(async () => {
      pending = null;
      if (document.getElementById("confirm").open) { refresh(); return; }
      try { await load(); } catch (error) { if (!closed) main.prepend(problemBox(explain(error))); }
    }, delay);
  };
  await load();
  main.focus({ preventScroll: true });
  const stop = context.live ? context.live.subscribe("all", (event) => {
    if (APPROVAL_EVENTS.has(event.type)) refresh();
  }) : () => {};
  return () => { closed = true; stop(); clearTimeout(pending); };
}
