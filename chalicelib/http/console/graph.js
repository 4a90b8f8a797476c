// A saga's steps drawn as a graph: start, the steps in order (steps sharing an order are a
// parallel group, stacked), end; forward edges solid, compensation edges dashed and reversed
// below, up to the pivot (retriable steps after it are never undone). Inactive steps are drawn
// faint and the edges pass them by. A step that runs only when its condition holds has a ◇
// gate on its left and says its `when`; a fan-out is drawn as a stack of boxes and says what
// it runs once per item of, how many at once and how many may fail.
import { s } from "./dom.js";

const W = 190, BASE_H = 74, LINE = 16, GAP_X = 56, GAP_Y = 18, PAD = 20, TERMINAL = 44;

// The lines a step's box adds under its action and undo: its condition, its fan-out.
function branchLines(step) {
  const lines = [];
  if (step.when != null) lines.push({ cls: "step-when", text: `◇ if ${clip(step.when, 25)}` });
  if (step.for_each != null) {
    const bounds = [step.max_concurrency != null ? `≤${step.max_concurrency}` : "",
      step.tolerated_failures != null ? `tol ${step.tolerated_failures}` : ""].filter(Boolean);
    lines.push({ cls: "step-fanout", text: `⫴ each ${clip(step.for_each, bounds.length ? 15 : 24)}` +
      (bounds.length ? ` ${bounds.join(" ")}` : "") });
  }
  return lines;
}

// The step's condition and fan-out, in full, for its tooltip and label.
function branchText(step) {
  let text = "";
  if (step.when != null) text += `\nruns only when: ${step.when} (else skipped)`;
  if (step.for_each != null) {
    text += `\nfor each item of: ${step.for_each}` +
      (step.max_concurrency != null ? `, at most ${step.max_concurrency} at once` : "") +
      (step.tolerated_failures != null ? `, ${step.tolerated_failures} may fail` : "");
  }
  return text;
}

function groups(steps) {
  const byOrder = new Map();
  for (const step of [...steps].sort((a, b) => a.order - b.order)) {
    if (!byOrder.has(step.order)) byOrder.set(step.order, []);
    byOrder.get(step.order).push(step);
  }
  return [...byOrder.values()];
}

const arrowHead = (id, cls) => s("marker", { id, viewBox: "0 0 10 10", refX: 9, refY: 5,
  markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
s("path", { d: "M0,0 L10,5 L0,10 z", class: cls }));

export function sagaGraph(saga) {
  const H = BASE_H + LINE * Math.max(0, ...saga.steps.map((step) => branchLines(step).length));
  const columns = groups(saga.steps);
  const tallest = Math.max(1, ...columns.map((column) => column.length));
  const bodyHeight = tallest * H + (tallest - 1) * GAP_Y;
  const width = PAD * 2 + TERMINAL * 2 + columns.length * (W + GAP_X) + GAP_X;
  const height = PAD * 2 + bodyHeight + 60;
  const mid = PAD + bodyHeight / 2;
  const svg = s("svg", { class: "graph", viewBox: `0 0 ${width} ${height}`, width, height,
    role: "img", "aria-label": `${saga.id} ${saga.version}: ${saga.steps.length} steps` },
  s("defs", {}, arrowHead("arrow", "edge-head"), arrowHead("undo-arrow", "undo-head")));

  const startX = PAD;
  svg.append(s("circle", { cx: startX + TERMINAL / 2, cy: mid, r: TERMINAL / 2 - 4,
    class: "terminal" }), s("text", { x: startX + TERMINAL / 2, y: mid + 4, class: "terminal-text",
    "text-anchor": "middle" }, "start"));
  let previous = [{ x: startX + TERMINAL - 4, y: mid, active: true }];
  const placed = [];
  columns.forEach((column, index) => {
    const x = PAD + TERMINAL + GAP_X + index * (W + GAP_X);
    const top = mid - (column.length * H + (column.length - 1) * GAP_Y) / 2;
    const here = [];
    column.forEach((step, row) => {
      const y = top + row * (H + GAP_Y);
      const active = step.active !== false;
      const kind = step.kind || "compensatable";
      const undo = step.compensation ? `↩ ${clip(step.compensation, 26)}` : "↩ never: only forward";
      const branches = branchText(step);
      const fansOut = step.for_each != null;
      const node = s("g", { class: `step kind-${kind}${active ? "" : " inactive"}` +
          `${step.when != null ? " conditional" : ""}${fansOut ? " fanout" : ""}`,
        "data-step": step.id, "data-kind": kind, "data-when": step.when ?? null,
        "data-for-each": step.for_each ?? null,
        tabindex: 0, role: "img", "aria-label": `step ${step.order} ${step.id}: action ` +
          `${step.action}, compensation ${step.compensation ?? "none"}, ${kind}` +
          `${active ? "" : " (inactive)"}${branches.replaceAll("\n", "; ")}` },
      s("title", {}, `${step.name || step.id}\n${step.description || ""}\naction: ${step.action}` +
        `\ncompensation: ${step.compensation ?? "none"}\nkind: ${kind}\n` +
        `retries: ${step.max_retries ?? (kind === "retriable" ? "saga.retriable_max_attempts" : "default")}, ` +
        `timeout: ${step.timeout ?? "default"}${step.type ? `\ntype: ${step.type}` : ""}${branches}`),
      // A fan-out: a stack of boxes, one per item.
      fansOut ? s("rect", { x: x + 8, y: y + 8, width: W, height: H, rx: 8, class: "stack" }) : null,
      fansOut ? s("rect", { x: x + 4, y: y + 4, width: W, height: H, rx: 8, class: "stack" }) : null,
      s("rect", { x, y, width: W, height: H, rx: 8 }),
      s("text", { x: x + 10, y: y + 19, class: "step-title" },
        `${step.order}. ${clip(step.name || step.id, 22)}`),
      s("text", { x: x + 10, y: y + 38, class: "step-action" }, `▶ ${clip(step.action, 26)}`),
      s("text", { x: x + 10, y: y + 55, class: "step-undo" }, undo),
      branchLines(step).map((line, n) => s("text", { x: x + 10, y: y + 55 + LINE * (n + 1),
        class: line.cls }, line.text)),
      // A condition gates the step: the flow reaches it, and passes it by when it is false.
      step.when != null ? s("path", { class: "gate",
        d: `M${x - 7},${y + H / 2} L${x},${y + H / 2 - 7} L${x + 7},${y + H / 2} L${x},${y + H / 2 + 7} z` }) : null,
      // Above the box: the title keeps its width whatever the label's.
      s("text", { x: x + W - 4, y: y - 5, class: "step-kind", "text-anchor": "end" },
        active ? (kind === "compensatable" ? step.type || "" : kind) : "inactive"));
      svg.append(node);
      here.push({ x, y, active, step });
    });
    placed.push(here);
    const live = here.filter((node) => node.active);
    if (live.length === 0) return; // a group of inactive steps only: edges skip it
    for (const from of previous) {
      for (const to of live) {
        svg.insertBefore(edge(from.x, from.y, to.x, to.y + H / 2, "edge", "arrow"), svg.children[1]);
      }
    }
    previous = live.map((node) => ({ x: node.x + W, y: node.y + H / 2, active: true }));
  });
  const endX = PAD + TERMINAL + GAP_X + columns.length * (W + GAP_X);
  for (const from of previous) svg.append(edge(from.x, from.y, endX + 4, mid, "edge", "arrow"));
  svg.append(s("circle", { cx: endX + TERMINAL / 2, cy: mid, r: TERMINAL / 2 - 4,
    class: "terminal" }), s("text", { x: endX + TERMINAL / 2, y: mid + 4, class: "terminal-text",
    "text-anchor": "middle" }, "end"));

  // Compensation: each active group undoes back into the previous active one; groups after
  // the pivot (retriable) are never undone.
  const active = placed.map((column) => column.filter((node) => node.active))
    .filter((c) => c.length && c.every((node) => node.step.kind !== "retriable"));
  const base = PAD + bodyHeight + 14;
  const bottom = (node) => node.y + H + (node.step.for_each != null ? 8 : 0); // below its stack
  for (let i = active.length - 1; i > 0; i -= 1) {
    // From the bottom of one group to the bottom of the one before: below every box.
    const from = active[i][active[i].length - 1], to = active[i - 1][active[i - 1].length - 1];
    const x1 = from.x + W / 2, x2 = to.x + W / 2;
    svg.append(s("path", { class: "undo", "marker-end": "url(#undo-arrow)",
      d: `M${x1},${bottom(from)} C${x1},${base + 34} ${x2},${base + 34} ${x2},${bottom(to) + 4}` }));
  }
  if (active.length) {
    svg.append(s("text", { x: PAD, y: height - 8, class: "legend-text" },
      "solid: forward order (a column runs in parallel) · dashed: compensation, in reverse, " +
      "when a step fails for good" +
      (saga.steps.some((step) => step.kind === "pivot") ? " · after the pivot: only forward" : "") +
      (saga.steps.some((step) => step.when != null) ? " · ◇ runs only when its condition holds" : "") +
      (saga.steps.some((step) => step.for_each != null) ? " · stacked: once per item" : "")));
  }
  return svg;
}

function edge(x1, y1, x2, y2, cls, marker) {
  const mx = (x1 + x2) / 2;
  return s("path", { class: cls, "marker-end": `url(#${marker})`,
    d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2 - 2},${y2}` });
}

function clip(text, n) {
  const value = String(text ?? "");
  return value.length > n ? `${value.slice(0, n - 1)}…` : value;
}
