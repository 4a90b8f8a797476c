// An execution's page: status and why it did not complete, the operator's actions (and a
// waiting approval's Approve and Reject), a live timeline of every attempt, the steps with
// what each was sent, their results and errors, and the input.
import { get } from "./api.js";
import { actionBar } from "./actions.js";
import { approvalPanels } from "./approvals.js";
import { countsData, countsText, planText, skipText, visibleRows } from "./branches.js";
import { badge, FINAL, fill, h, json, problemBox, span, time, when } from "./dom.js";
import { timeline, waitsOpen, waitText } from "./timeline.js";
import { historySection } from "./history.js";

const POLL_MS = 3000; // only while the live connection is down
const MAX_POLLS = 400;
const TICK_MS = 1000; // a waiting bar grows with the clock between events

function reason(execution) {
  const error = execution.error;
  if (!error) return null;
  const where = error.step_id ? `step ${error.step_id}${error.phase ? ` (${error.phase})` : ""}: ` : "";
  return h("div", { class: "reason", "data-testid": "reason", role: "note" },
    h("strong", {}, execution.status === "COMPLETED" ? "Note: " : "Did not complete: "),
    `${where}${error.type}: ${error.message}`, error.by ? ` (by ${error.by})` : "");
}

// A completed execution's output, or why its saga's output mapping gave none.
function outputSection(execution) {
  const problem = execution.output_error;
  if (execution.output == null && !problem) return null;
  return [h("h2", {}, "Output"),
    problem ? h("div", { class: "reason", "data-testid": "output-error", role: "note" },
      h("strong", {}, "No output: "),
      `field ${problem.field} (${problem.reference}): ${problem.message}`) : null,
    execution.output != null ? h("div", { "data-testid": "output" }, json(execution.output)) : null];
}

// What the "Condition / items" cell says: a skipped step's condition and what it read; a
// fan-out's items by status, as a button that shows or hides them (as its timeline row does).
function branchCell(step, fanout, view) {
  if (step.condition) return h("span", { "data-condition": step.step_id }, skipText(step.condition));
  if (!fanout) return "";
  const { items: listed, open } = fanout;
  return [h("button", { type: "button", class: "items-toggle", "data-toggle": step.step_id,
    "aria-expanded": String(open), "data-counts": countsData(listed),
    onclick: () => view.toggle(step.step_id) },
  `${open ? "▾" : "▸"} ${countsText(listed, step.fanout)}`),
  step.fanout ? h("div", { class: "muted small" }, planText(step.fanout)) : null];
}

function stepRow(step, fanout, view) {
  return h("tr", { "data-step": step.step_id, class: step.item ? "item-row" : null,
    "data-item-of": step.item ? step.item.of : null },
  h("td", {}, step.item ? `↳ ${step.step_id}` : step.step_id,
    // A child step: its child execution's page.
    step.child ? [" ", h("a", { href: `#/executions/${encodeURIComponent(step.child)}`,
      "data-child-link": step.step_id, title: step.child }, "child ↗")] : null),
  h("td", {}, badge(step.status)),
  h("td", { class: "num" }, `${step.action_attempts}`,
    step.compensation_attempts ? ` + ${step.compensation_attempts} undo` : ""),
  h("td", {}, when(step.started_at)),
  h("td", {}, when(step.compensated_at || step.ended_at)),
  h("td", { class: "small", "data-wait": step.waiting ? step.waiting.kind : null },
    step.waiting ? waitText(step.waiting) : ""),
  h("td", { class: "small" }, branchCell(step, fanout, view)),
  // The error's type first: a participant's own (OutOfStock, CardDeclined) is what an
  // operator looks for.
  h("td", { class: "small", "data-error-type": step.error ? step.error.type || "" : null },
    step.error ? [h("strong", {}, step.error.type || "Error"), `: ${step.error.message || ""}`] : ""),
  h("td", {}, sentInput(step)),
  h("td", {}, step.result ? h("details", {}, h("summary", {}, "result"), json(step.result)) : ""));
}

// What the step's latest attempt was sent (its input mapping resolved), as its record keeps it.
function sentInput(step) {
  const sent = [...step.attempts].reverse().find((a) => a.input != null);
  return sent ? h("details", { "data-input-of": step.step_id }, h("summary", {}, "input"),
    json(sent.input)) : "";
}

function stepsTable(execution, view) {
  const rows = visibleRows(execution, view.expanded).map(({ step, fanout }) => stepRow(step, fanout, view));
  return h("div", { class: "scroll" }, h("table", { class: "list" },
    h("thead", {}, h("tr", {}, ["Step", "Status", "Attempts", "Started", "Ended", "Waits for",
      "Condition / items", "Error", "Sent", "Result"].map((name) => h("th", { scope: "col" }, name)))),
    h("tbody", {}, rows)));
}

function attemptsList(execution) {
  const rows = [];
  for (const step of [...execution.steps].sort((a, b) => a.position - b.position)) {
    for (const a of step.attempts) {
      rows.push(h("tr", { "data-phase": a.phase, "data-outcome": a.outcome },
        h("td", {}, step.step_id), h("td", {}, a.phase), h("td", { class: "num" }, a.attempt),
        h("td", { "data-started": a.started_at }, when(a.started_at)),
        h("td", {}, a.outcome), h("td", { class: "num" }, span(a.duration_ms)),
        h("td", { class: "small" }, a.error_type ? `${a.error_type}: ${a.error_message || ""}` : ""),
        h("td", {}, a.input != null ? h("details", { "data-attempt-input": `${step.step_id}#${a.attempt}` },
          h("summary", {}, "input"), json(a.input)) : "")));
    }
  }
  return h("details", { class: "attempts" }, h("summary", {}, `Every attempt (${rows.length})`),
    h("div", { class: "scroll" }, h("table", { class: "list" }, h("thead", {}, h("tr", {},
      ["Step", "Phase", "#", "Started", "Outcome", "Took", "Error", "Sent"].map((n) => h("th", { scope: "col" }, n)))),
    h("tbody", {}, rows))));
}

export async function executionPage(main, context, executionId) {
  const id = encodeURIComponent(executionId);
  const memo = {}, decided = {}; // the last answers of an operator's action, of an approval
  let execution = await get(`executions/${id}`);
  let closed = false;
  let pending = null, polls = 0, poller = null, resize = null, ticker = null;
  let box = null, width = 0; // the timeline's container, and the width it is drawn at
  // The fan-outs whose items are shown (collapsed by default): kept as events redraw the page.
  const view = { expanded: new Set(), toggle: null };
  const history = historySection(execution.id); // kept across redraws
  const draw = () => timeline(execution, width, Date.now(), view);

  const render = () => {
    // A redraw keeps the focus on a fan-out's toggle (the timeline's or the table's).
    const focused = document.activeElement;
    const toggled = focused && main.contains(focused) && focused.dataset ? focused.dataset.toggle : null;
    const tag = toggled ? focused.tagName : null;
    const took = execution.ended_at ? span(time(execution.ended_at) - time(execution.started_at))
      : `${span(Date.now() - time(execution.started_at))} so far`;
    const style = getComputedStyle(main); // the content box: clientWidth includes the padding
    const inner = main.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    width = Math.max(340, Math.min(1400, Math.floor(inner) - 2));
    const legend = h("p", { class: "legend small" }, h("span", { class: "key action" }), " action ",
      h("span", { class: "key compensation" }), " compensation ", h("span", { class: "key failed" }),
      " failed attempt (✗) ", h("span", { class: "key waiting" }),
      " waiting (│ last heartbeat) · ⤼ skipped (its condition was false) · ▸ a fan-out: " +
      "show its items · hover or focus a bar for its details");
    box = h("div", { class: "scroll", "data-testid": "timeline" }, draw());
    const typing = history.focused();
    fill(main, 
      h("p", { class: "crumbs" }, h("a", { href: "#/executions" }, "Executions"), " / ", execution.id),
      h("h1", {}, "Execution ", h("span", { "data-testid": "status" }, badge(execution.status))),
      h("dl", { class: "facts" },
        h("dt", {}, "Id"), h("dd", {}, h("code", {}, execution.id)),
        h("dt", {}, "Saga"), h("dd", {}, h("a", { href: `#/sagas/${encodeURIComponent(execution.saga_id)}` +
          `?version=${encodeURIComponent(execution.version)}` }, execution.saga_id), ` ${execution.version}`),
        // A child execution: the parent execution and step that run it.
        execution.parent ? [h("dt", {}, "Parent"), h("dd", { "data-testid": "parent" },
          h("a", { href: `#/executions/${encodeURIComponent(execution.parent.execution_id)}` },
            execution.parent.execution_id), ` step ${execution.parent.step_id}` +
          (execution.depth > 1 ? ` (depth ${execution.depth})` : ""))] : null,
        h("dt", {}, "Started"), h("dd", {}, when(execution.started_at)),
        h("dt", {}, "Ended"), h("dd", {}, execution.ended_at ? when(execution.ended_at) : "—"),
        h("dt", {}, "Took"), h("dd", {}, took),
        // The engine's run (the Step Functions execution ARN), for its own console and logs.
        execution.sfn_execution_arn ? [h("dt", {}, "Engine run"), h("dd", { "data-testid": "engine-run" },
          h("code", { title: execution.sfn_execution_arn }, execution.sfn_execution_arn.split(":").pop()))] : null,
        execution.resolved_by ? [h("dt", {}, "Resolved"), h("dd", { "data-testid": "resolution" },
          `by ${execution.resolved_by}${execution.resolved_at ? ` at ${when(execution.resolved_at)}` : ""}: ` +
          `${execution.resolution}`)] : null),
      reason(execution),
      actionBar(execution, context.me, memo, () => refresh(0)),
      approvalPanels(execution, context.me, decided, () => {
        refresh(0);
        if (context.approvals) context.approvals();
      }),
      h("h2", {}, "Timeline"), legend,
      box,
      attemptsList(execution),
      history.element,
      h("h2", {}, "Steps"), stepsTable(execution, view),
      outputSection(execution),
      h("h2", {}, "Input"), json(execution.input),
      execution.faults && execution.faults.length ? [h("h2", {}, "Injected faults"), json(execution.faults)] : null);
    if (typing) history.focus();
    if (toggled) {
      const again = [...main.querySelectorAll("[data-toggle]")]
        .find((node) => node.dataset.toggle === toggled && node.tagName === tag);
      if (again) again.focus({ preventScroll: true });
    }
  };
  view.toggle = (stepId) => {
    if (view.expanded.has(stepId)) view.expanded.delete(stepId);
    else view.expanded.add(stepId);
    render();
  };

  // Events say something changed; the page reads the execution again (the push follows the
  // read model, so the read sees the event). Bursts are read once.
  const refresh = (delay = 150) => {
    if (pending || closed) return;
    pending = setTimeout(async () => {
      pending = null;
      try {
        execution = await get(`executions/${id}`);
        if (!closed) render();
      } catch (error) {
        if (!closed) main.prepend(problemBox(String(error.message)));
      }
    }, delay);
  };
  const poll = () => {
    // Without the live connection, poll a running execution (bounded).
    clearTimeout(poller);
    if (closed || polls >= MAX_POLLS) return;
    poller = setTimeout(() => {
      polls += 1;
      if (!(context.live && context.live.connected) && !FINAL.has(execution.status)) refresh(0);
      poll();
    }, POLL_MS);
  };

  // While a step waits its bar grows: the timeline alone is drawn again each second (not
  // while the operator's focus is on one of its bars, which a redraw would take away).
  ticker = setInterval(() => {
    if (closed || !box || !waitsOpen(execution) || box.contains(document.activeElement)) return;
    box.replaceChildren(draw());
  }, TICK_MS);

  render();
  main.focus({ preventScroll: true });
  const stops = [];
  if (context.live) {
    stops.push(context.live.subscribe(`execution:${execution.id}`, () => { refresh(); history.refresh(); }));
    stops.push(context.live.onState((state) => { if (state === "on") refresh(0); }));
    refresh(500); // whatever happened before the subscription took effect
  }
  poll();
  resize = () => render();
  window.addEventListener("resize", resize);
  return () => {
    closed = true;
    history.stop();
    for (const stop of stops) stop();
    clearTimeout(pending);
    clearTimeout(poller);
    clearInterval(ticker);
    window.removeEventListener("resize", resize);
  };
}
