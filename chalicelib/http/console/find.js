// Find an execution by its id, or a saga's executions by the saga's id (GET /executions?q=):
// the execution's page when one has that id, else the list filtered by that saga, else say
// nothing matched.
import { ApiError, explain, get, query } from "./api.js";
import { h } from "./dom.js";

async function exists(path) {
  try { await get(path); return true; } catch (error) {
    if (error instanceof ApiError && error.status === 404) return false;
    throw error;
  }
}

export function findForm() {
  const input = h("input", { type: "search", name: "find", required: true, spellcheck: "false",
    autocomplete: "off", placeholder: "execution id or saga id", "data-testid": "find" });
  const said = h("span", { class: "problem small", role: "status", "data-testid": "find-problem" });
  return h("form", { class: "find", role: "search", onsubmit: async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    said.textContent = "";
    try {
      // GET /executions?q=: the execution with that id, else that saga's executions.
      const first = (await get(`executions${query({ q: text, limit: 1 })}`)).items[0];
      if (first && first.id === text) {
        location.hash = `#/executions/${encodeURIComponent(text)}`;
      } else if (first || await exists(`sagas/${encodeURIComponent(text)}`)) {
        location.hash = `#/executions?saga_id=${encodeURIComponent(text)}`;
      } else {
        said.textContent = `No execution and no saga has the id “${text}”.`;
      }
    } catch (error) { said.textContent = explain(error); }
  } }, h("label", {}, "Find", input), h("button", { type: "submit" }, "Go"), said);
}
