// Start an execution from a saga's page: a JSON input editor, checked before anything is sent
// (an object, or nothing), shown only when the caller's role may execute (GET /whoami). On
// 202 the page moves to the new execution, which follows the live feed.
import { call, explain } from "./api.js";
import { h } from "./dom.js";

// What is wrong with the text as an execution's input, or null.
export function inputProblem(text) {
  if (!text.trim()) return null; // no input: {}
  let value;
  try { value = JSON.parse(text); } catch (error) { return `Not JSON: ${error.message}`; }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return "The input must be a JSON object, such as {\"customer_id\": \"c-1\"}.";
  }
  return null;
}

export function startForm(saga, me) {
  if (!me || !new Set(me.actions).has("execute")) return null;
  const editor = h("textarea", { id: "start-input", rows: "6", spellcheck: "false",
    class: "code", "aria-describedby": "start-problem", placeholder: "{}" });
  const problem = h("p", { id: "start-problem", class: "problem", role: "alert",
    "data-testid": "start-problem" });
  const button = h("button", { type: "submit", class: "primary", disabled: !saga.active },
    "Start");
  const check = () => {
    problem.textContent = inputProblem(editor.value) || "";
    return !problem.textContent;
  };
  editor.addEventListener("input", check);
  const form = h("form", { class: "card start", "data-testid": "start-form", onsubmit: async (event) => {
    event.preventDefault();
    if (!check()) { editor.focus(); return; }
    button.disabled = true;
    try {
      const input = editor.value.trim() ? JSON.parse(editor.value) : {};
      const { body } = await call("POST", `sagas/${encodeURIComponent(saga.id)}/execute`, { input });
      location.hash = `#/executions/${encodeURIComponent(body.id)}`;
    } catch (error) {
      problem.textContent = explain(error);
      button.disabled = false;
    }
  } },
  h("h2", {}, "Start an execution"),
  h("label", { for: "start-input" }, "Input (a JSON object; empty: {})"),
  editor, problem,
  saga.active ? null : h("p", { class: "muted" }, "This saga is inactive: it cannot be executed."),
  h("div", { class: "buttons" }, button));
  return form;
}
