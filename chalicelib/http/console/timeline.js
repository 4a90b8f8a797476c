// An execution's timeline: a row per step, a bar per attempt on one time axis. Action
// attempts are solid, compensation attempts hatched; failed attempts are red-edged with a ✗.
// Every bar is focusable and names its attempt (phase, outcome, duration, error). Steps of a
// parallel group are marked ∥ (their bars overlap in time); a pivot ◆, a retriable step ↻, a
// callback ✉, a timer ◔.
// A step that waits (a callback, a timer) gets a waiting bar from the wait's start, growing
// until it is completed: it says what it waits for, its last heartbeat (a tick on the bar)
// and who completed it.
// A step whose condition was false is marked ⤼ and gets a dashed mark where it was skipped,
// saying its condition and the values it read. A fan-out's items are a group of rows under
// their step, collapsed by default: the step's row says how many items are in each status,
// and its label (a button) opens or closes the group.
import { countsData, countsText, planText, skipText, visibleRows } from "./branches.js";
import { clock, s, span, STEP_AT_WORK, STEP_SKIPPED, time, WAIT_KINDS } from "./dom.js";

const LABEL = 170, ROW = 30, BAR = 18, TOP = 28, RIGHT = 16;

function ticks(total) {
  const steps = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000,
    120000, 300000, 600000, 1800000, 3600000];
  const every = steps.find((step) => total / step <= 6) || total / 6;
  const out = [];
  for (let t = 0; t <= total && out.length < 12; t += every) out.push(t);
  return out;
}

// What a wait is for: "callback cb_1 until 12:03:05", "timer until 12:03:05".
const waitsFor = (wait) => {
  const until = wait.until ? ` until ${clock(wait.until)}` : "";
  return wait.kind === WAIT_KINDS.timer ? `timer${until}` : `callback ${wait.callback_id || "?"}${until}`;
};

// What a wait is for, and how it went: "callback cb_1 until 12:03:05 · last heartbeat …".
export function waitText(wait) {
  const parts = [waitsFor(wait)];
  if (wait.heartbeat_at) parts.push(`last heartbeat ${clock(wait.heartbeat_at)}`);
  if (wait.completed_at) parts.push(`completed by ${wait.completed_by || "?"} at ${clock(wait.completed_at)}`);
  return parts.join(" · ");
}

// Whether a step of the execution is still waiting (its bar grows with the clock).
export const waitsOpen = (execution) =>
  !execution.ended_at && (execution.steps || []).some((step) => step.waiting && !step.waiting.completed_at);

const clipId = (id, n) => (id.length > n ? `${id.slice(0, n - 1)}…` : id);

// view: { expanded: the fan-outs whose items are shown, toggle(stepId): open or close one }.
export function timeline(execution, width, now = Date.now(), view = {}) {
  const expanded = view.expanded || new Set();
  const drawn = visibleRows(execution, expanded);
  const steps = drawn.map((row) => row.step);
  const sizes = new Map();
  for (const step of steps) if (!step.item) sizes.set(step.group, (sizes.get(step.group) || 0) + 1);
  const mark = (step) => (step.item ? "" : (step.group != null && sizes.get(step.group) > 1 ? "∥ " : "") +
    (step.status === STEP_SKIPPED ? "⤼ " : "") +
    ({ pivot: "◆ ", retriable: "↻ ", callback: "✉ ", wait: "◔ " }[step.kind] || ""));
  const t0 = time(execution.started_at);
  let t1 = execution.ended_at ? time(execution.ended_at) : now;
  for (const step of execution.steps) {
    for (const a of step.attempts) t1 = Math.max(t1, time(a.ended_at));
    if (step.waiting && step.waiting.completed_at) t1 = Math.max(t1, time(step.waiting.completed_at));
  }
  const total = Math.max(1, t1 - t0);
  const plot = Math.max(120, width - LABEL - RIGHT);
  const x = (t) => LABEL + ((t - t0) / total) * plot;
  const height = TOP + steps.length * ROW + 10;
  const svg = s("svg", { class: "timeline", viewBox: `0 0 ${width} ${height}`, width, height,
    role: "group", "aria-label": `timeline of ${steps.length} steps over ${span(total)}` },
  s("defs", {}, s("pattern", { id: "hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse",
    patternTransform: "rotate(45)" }, s("rect", { width: 6, height: 6, class: "hatch-bg" }),
  s("line", { x1: 0, y1: 0, x2: 0, y2: 6, class: "hatch-line" }))));
  for (const t of ticks(total)) {
    svg.append(s("line", { x1: x(t0 + t), x2: x(t0 + t), y1: TOP - 6, y2: height - 6, class: "tick" }),
      s("text", { x: x(t0 + t), y: TOP - 10, class: "tick-text", "text-anchor": "middle" }, span(t)));
  }
  drawn.forEach(({ step, fanout }, row) => {
    const y = TOP + row * ROW + (ROW - BAR) / 2;
    svg.append(rowLabel(step, fanout, y, mark(step), view));
    // Where the row's bars begin (first) and end: a fan-out's counts go beside them.
    let first = null, end = null;
    for (const a of step.attempts) {
      const start = time(a.started_at), stop = Math.max(time(a.ended_at), start);
      const failed = a.outcome !== "succeeded";
      const text = `${step.step_id}: ${a.phase} attempt ${a.attempt} ${a.outcome} in ` +
        `${span(a.duration_ms)}${a.error_type ? ` — ${a.error_type}: ${a.error_message || ""}` : ""}`;
      const left = x(start);
      const barWidth = Math.max(4, x(stop) - left);
      first = Math.min(first ?? left, left);
      end = Math.max(end ?? 0, left + barWidth);
      svg.append(s("g", { class: `bar ${a.phase}${failed ? " failed" : ""}`, tabindex: 0,
        "data-phase": a.phase, "data-outcome": a.outcome, "data-step": step.step_id,
        role: "img", "aria-label": text },
      s("title", {}, text),
      s("rect", { x: left, y, width: barWidth, height: BAR, rx: 3 }),
      failed ? s("text", { x: left + barWidth + 2, y: y + BAR - 4, class: "mark" }, "✗") : null));
    }
    if (step.waiting) svg.append(waitBar(step, x, y, t1, width - RIGHT));
    if (step.status === STEP_SKIPPED && step.condition) svg.append(skipMark(step, x, y, t0, width - RIGHT));
    // A step still going has an open bar up to now.
    if (STEP_AT_WORK.has(step.status)) {
      const last = step.attempts.length ? time(step.attempts[step.attempts.length - 1].ended_at)
        : time(step.started_at) || t0;
      first = Math.min(first ?? x(last), x(last));
      end = Math.max(end ?? 0, x(t1));
      svg.append(s("rect", { x: x(last), y, width: Math.max(4, x(t1) - x(last)), height: BAR,
        rx: 3, class: "pending", "data-step": step.step_id }, s("title", {}, `${step.step_id}: ${step.status}`)));
    }
    if (fanout) svg.append(itemsSummary(step, fanout, y, first, end, width - RIGHT));
  });
  return svg;
}

// A row's label: the step's id with its marks; a fan-out's is a button that opens or closes
// its items, an item's is indented under it.
function rowLabel(step, fanout, y, mark, view) {
  const about = `${step.step_id}: ${step.status}` + (step.group != null ? ` · group ${step.group}` : "") +
    (step.kind ? ` · ${step.kind}` : "") + (step.condition ? ` · skipped: ${skipText(step.condition)}` : "");
  if (step.item) {
    return s("text", { x: 14, y: y + BAR - 4, class: "row-label item-label", "data-item": step.step_id },
      s("title", {}, about), `↳ ${clipId(step.step_id, 20)}`);
  }
  const label = `${mark}${clipId(step.step_id, 20)}`;
  if (step.child) {
    // A child step's row opens the child's own execution (its steps, its undo).
    return s("a", { href: `#/executions/${encodeURIComponent(step.child)}`, class: "child-link",
      "data-child-of": step.step_id, "aria-label": `${step.step_id}: ${step.status}; open its ` +
        `child execution ${step.child}` },
    s("text", { x: 4, y: y + BAR - 4, class: "row-label" },
      s("title", {}, `${about} · child execution ${step.child}`), `${label} ↗`));
  }
  if (!fanout) {
    return s("text", { x: 4, y: y + BAR - 4,
      class: `row-label${step.status === STEP_SKIPPED ? " skipped" : ""}` }, s("title", {}, about), label);
  }
  const n = fanout.items.length;
  const toggle = () => view.toggle && view.toggle(step.step_id);
  return s("g", { class: "toggle", role: "button", tabindex: 0, "data-toggle": step.step_id,
    "aria-expanded": String(fanout.open),
    "aria-label": `${fanout.open ? "hide" : "show"} the ${n} items of ${step.step_id}`,
    onclick: toggle,
    onkeydown: (event) => {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); toggle(); }
    } },
  s("title", {}, `${about} · ${countsText(fanout.items, step.fanout)}`),
  s("rect", { x: 1, y: y - 2, width: LABEL - 8, height: BAR + 4, rx: 3, class: "toggle-box" }),
  s("text", { x: 4, y: y + BAR - 4, class: "row-label" }, `${fanout.open ? "▾" : "▸"} ${label}`));
}

// A fan-out's items by status: after its bars where there is room, else before them, else
// over them.
function itemsSummary(step, fanout, y, start, end, right) {
  const said = countsText(fanout.items, step.fanout);
  const needed = said.length * 6.2; // 11px text, roughly
  let at = LABEL + 4, anchor = "start", over = false;
  if (end !== null && right - end - 6 >= needed) at = end + 6;
  else if (start !== null && start - LABEL - 6 >= needed) [at, anchor] = [start - 6, "end"];
  else if (start !== null) [at, over] = [start + 4, true];
  const plan = planText(step.fanout);
  return s("g", { class: "items-summary", "data-step": step.step_id, "data-counts": countsData(fanout.items),
    role: "img", "aria-label": `${step.step_id}: ${said}${plan ? ` (${plan})` : ""}` },
  s("title", {}, `${said}${plan ? ` · ${plan}` : ""}`),
  s("text", { x: at, y: y + BAR - 5, class: `items-text${over ? " over" : ""}`, "text-anchor": anchor }, said));
}

// Where a step was skipped: a dashed mark, and its condition beside it.
function skipMark(step, x, y, t0, right) {
  const at = x(time(step.ended_at || step.started_at) || t0);
  const condition = step.condition;
  const text = `${step.step_id}: skipped — ${skipText(condition)}`;
  const said = `skipped: ${condition.when} → ${JSON.stringify(condition.value ?? false)}`;
  const needed = said.length * 6.2;
  const after = right - at - 14 >= needed || at - LABEL < needed;
  return s("g", { class: "skip", tabindex: 0, role: "img", "aria-label": text, "data-step": step.step_id },
    s("title", {}, text),
    s("rect", { x: at - 5, y: y + 1, width: 10, height: BAR - 2, rx: 2 }),
    s("text", { x: after ? at + 9 : at - 9, y: y + BAR - 5, class: "skip-text",
      "text-anchor": after ? "start" : "end" }, said));
}

// The waiting bar: from the wait's start to its completion (or to the axis's end while it
// waits), thinner than an attempt's bar and drawn over it, a tick at the last heartbeat. Its
// text says what it waits for (and who completed it) beside the bar where there is room;
// the whole story is in its label and in the steps table.
function waitBar(step, x, y, t1, right) {
  const wait = step.waiting;
  const open = !wait.completed_at;
  const since = time(wait.since);
  const end = Math.max(open ? t1 : time(wait.completed_at), since);
  const text = `${step.step_id}: ${open ? "waiting" : "waited"} for ${waitText(wait)}` +
    (open ? ` (${span(end - since)} so far)` : ` (${span(end - since)})`);
  const left = x(since);
  const barWidth = Math.max(4, x(end) - left);
  const beat = wait.heartbeat_at ? x(time(wait.heartbeat_at)) : null;
  const said = waitsFor(wait) + (open ? "" : ` · by ${wait.completed_by || "?"}`);
  const room = right - left - 4, needed = said.length * 6.2; // 11px text, roughly
  const after = needed <= room || left - LABEL < needed;
  return s("g", { class: "wait", tabindex: 0, role: "img", "aria-label": text,
    "data-step": step.step_id, "data-kind": wait.kind, "data-open": String(open),
    "data-width": barWidth.toFixed(1) },
  s("title", {}, text),
  s("rect", { x: left, y: y + 3, width: barWidth, height: BAR - 6, rx: 2 }),
  beat !== null ? s("line", { x1: beat, x2: beat, y1: y, y2: y + BAR, class: "heartbeat" }) : null,
  s("text", { x: after ? left + 4 : left - 4, y: y + BAR - 6, class: "wait-text",
    "text-anchor": after ? "start" : "end" }, said));
}
