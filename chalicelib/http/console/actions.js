// Operator actions on an execution, each behind a confirmation, each showing the API's answer.
// A button appears only when the caller's role allows the action (GET /whoami) and the
// execution's status admits it (ACTION_SOURCES: the lifecycle's, served with the page).
import { call, explain } from "./api.js";
import { ACTION_SOURCES, h } from "./dom.js";

const ACTIONS = [
  // After a pivot a saga only goes forward: the API refuses to compensate it (409).
  { name: "compensate", label: "Compensate",
    only: (e) => !(e.steps || []).some((step) => step.kind === "pivot"),
    text: "Undo every step of this completed execution, in reverse order?",
    run: (e) => call("POST", `sagas/${encodeURIComponent(e.saga_id)}/compensate`, { execution_id: e.id }) },
  { name: "retry_compensation", label: "Retry compensation",
    text: "Run the compensation of this execution again, from the steps not yet undone?",
    run: (e) => call("POST", `executions/${encodeURIComponent(e.id)}/retry-compensation`) },
  { name: "retry_forward", label: "Retry forward",
    text: "Run the parked step again, then the steps after it? Nothing is undone after the pivot.",
    run: (e) => call("POST", `executions/${encodeURIComponent(e.id)}/retry-forward`) },
  { name: "resolve", label: "Resolve…",
    text: "Record that a person has handled this execution. Its status does not change.",
    reason: true,
    run: (e, reason) => call("POST", `executions/${encodeURIComponent(e.id)}/resolve`, { reason }) },
];

// Asks before an action: its text, and a reason when it takes one (action.reason: true or
// "required": at least 3 characters; "optional": may stay empty; action.reasonLabel names
// it). Resolves to { reason } when confirmed, null when cancelled.
export function confirm(action) {
  const dialog = document.getElementById("confirm");
  const reason = document.getElementById("confirm-reason");
  const problem = document.getElementById("confirm-problem");
  const required = Boolean(action.reason) && action.reason !== "optional";
  document.getElementById("confirm-title").textContent = action.label.replace("…", "");
  document.getElementById("confirm-text").textContent = action.text;
  document.getElementById("confirm-ok").textContent = `Yes, ${action.label.replace("…", "").toLowerCase()}`;
  document.getElementById("confirm-reason-label").hidden = !action.reason;
  document.getElementById("confirm-reason-name").textContent =
    action.reasonLabel || "Reason (3 to 500 characters)";
  reason.value = "";
  problem.textContent = "";
  return new Promise((resolve) => {
    const ok = document.getElementById("confirm-ok");
    const check = (event) => {
      if (required && reason.value.trim().length < 3) {
        event.preventDefault();
        problem.textContent = action.reasonProblem || "Give a reason of at least 3 characters.";
        reason.focus();
      }
    };
    ok.addEventListener("click", check);
    dialog.addEventListener("close", () => {
      ok.removeEventListener("click", check);
      resolve(dialog.returnValue === "ok" ? { reason: reason.value.trim() } : null);
    }, { once: true });
    dialog.returnValue = "";
    dialog.showModal();
    (action.reason ? reason : ok).focus();
  });
}

// memo keeps the last answer across the page's re-renders.
export function actionBar(execution, me, memo, after) {
  const allowed = new Set(me.actions);
  const answer = h("p", { class: "answer", role: "status", "aria-live": "polite",
    "data-testid": "action-answer", "data-ok": memo.ok || "" }, memo.text || "");
  const say = (text, ok) => { memo.text = text; memo.ok = ok; answer.textContent = text; answer.dataset.ok = ok; };
  const buttons = ACTIONS.filter((a) => allowed.has(a.name) && (ACTION_SOURCES[a.name] || []).includes(execution.status)
    && (!a.only || a.only(execution)))
    // A resolved execution accepts no further decision: the API refuses each (409).
    .filter(() => !execution.resolved_by)
    .map((action) => h("button", { type: "button", "data-action": action.name, onclick: async (event) => {
      const chosen = await confirm(action);
      if (!chosen) { event.target.focus(); return; }
      say("Sending…", "");
      try {
        const { status, body } = await action.run(execution, chosen.reason);
        say(`${action.label.replace("…", "")}: the service answered ${status}, execution ` +
          `${body.status}${body.resolution ? `, resolved: “${body.resolution}”` : ""}.`, "true");
      } catch (error) {
        say(`${action.label.replace("…", "")}: ${explain(error)}`, "false");
      }
      after();
    } }, action.label));
  if (!buttons.length) return h("div", { class: "actions", "data-testid": "actions" }, answer);
  return h("div", { class: "actions", "data-testid": "actions" }, buttons, answer);
}
