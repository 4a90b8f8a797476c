// Steps that branch and fan out, in words: a skipped step's condition and the values it read,
// a fan-out's bounds, and its items counted by status (in the lifecycle's order of statuses).
import { STEP_STATUSES } from "./dom.js";

const MAX_VALUE = 80; // a value read is shown whole in the step's details, clipped here

const shown = (value) => {
  const text = JSON.stringify(value);
  return text.length > MAX_VALUE ? `${text.slice(0, MAX_VALUE - 1)}…` : text;
};

// "$.input.kind = "digital", $.results.a.n = 3" (absent references are not recorded).
export function readText(operands) {
  const entries = Object.entries(operands || {});
  if (!entries.length) return "nothing it names was present";
  return entries.map(([reference, value]) => `${reference} = ${shown(value)}`).join(", ");
}

// "when $.input.kind != "digital" was false; it read $.input.kind = "digital"".
export const skipText = (condition) =>
  `when ${condition.when} was ${JSON.stringify(condition.value ?? false)}; it read ` +
  readText(condition.operands);

// A fan-out's bounds: "at most 4 at once, 1 may fail".
export function planText(fanout) {
  if (!fanout) return "";
  const parts = [`at most ${fanout.max_concurrency} at once`];
  parts.push(fanout.tolerated ? `${fanout.tolerated} may fail` : "none may fail");
  return parts.join(", ");
}

// The items of each fan-out (its step id -> its items, in item order).
export function itemsByStep(steps) {
  const found = new Map();
  for (const step of steps) {
    if (!step.item) continue;
    if (!found.has(step.item.of)) found.set(step.item.of, []);
    found.get(step.item.of).push(step);
  }
  for (const items of found.values()) items.sort((a, b) => a.item.index - b.item.index);
  return found;
}

// The rows an execution's page shows, in order: each step with its fan-out ({items, open}:
// its items so far and whether its group is shown; null for a step that does not fan out),
// then an open group's items, each a row of its own. The timeline and the steps table both
// draw these.
export function visibleRows(execution, expanded) {
  const all = [...execution.steps].sort((a, b) => a.position - b.position);
  const items = itemsByStep(all);
  const out = [];
  for (const step of all) {
    if (step.item) continue;
    const mine = items.get(step.step_id);
    const fanout = mine || step.fanout ? { items: mine || [], open: expanded.has(step.step_id) } : null;
    out.push({ step, fanout });
    if (fanout && fanout.open) for (const item of fanout.items) out.push({ step: item, fanout: null });
  }
  return out;
}

export const statusWord = (status) => status.toLowerCase().replaceAll("_", " ");

// [[status, n], ...]: the statuses the items are in, in the lifecycle's order.
export function itemCounts(items) {
  const counts = new Map();
  for (const item of items) counts.set(item.status, (counts.get(item.status) || 0) + 1);
  return STEP_STATUSES.filter((status) => counts.has(status)).map((status) => [status, counts.get(status)]);
}

// "3 items: 2 succeeded · 1 failed".
export function countsText(items, fanout) {
  const total = fanout && fanout.items != null ? fanout.items : items.length;
  const counts = itemCounts(items).map(([status, n]) => `${n} ${statusWord(status)}`);
  return `${total} item${total === 1 ? "" : "s"}${counts.length ? `: ${counts.join(" · ")}` : ""}`;
}

// What a test (or a script) reads off the page: each status the items are in -> how many.
export const countsData = (items) => JSON.stringify(Object.fromEntries(itemCounts(items)));
