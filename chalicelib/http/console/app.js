// The console's entry: who the caller is (GET /whoami), the token form when one is needed,
// the header's count of open approvals, and a hash router over the views.
import { ApiError, explain, get, token } from "./api.js";
import { fill, h } from "./dom.js";
import { Live } from "./live.js";
import { approvalCount, approvalsPage } from "./approvals.js";
import { executionPage } from "./execution.js";
import { executionsPage } from "./executions.js";
import { attentionBadge, attentionPage } from "./attention.js";
import { sagaPage, sagasPage } from "./sagas.js";

const main = document.getElementById("main");
// approvals: reads the header's count of open approvals again (soon).
const context = { me: null, live: null, approvals: null };
let cleanup = () => {};

function signIn(reason) {
  const input = h("input", { id: "token", type: "password", autocomplete: "off",
    spellcheck: "false", required: true, "aria-describedby": "token-help" });
  const form = h("form", { class: "card signin", onsubmit: (event) => {
    event.preventDefault();
    token.set(input.value);
    start();
  } },
  h("h1", {}, "Sign in"),
  reason ? h("p", { class: "problem", role: "alert" }, reason) : null,
  h("label", { for: "token" }, "Bearer token"),
  input,
  h("p", { id: "token-help", class: "muted" },
    "Paste a JWT issued for this service. It is kept in this tab only (sessionStorage) and " +
    "sent with every request and the live connection."),
  h("button", { class: "primary", type: "submit" }, "Use token"));
  fill(main, form);
  input.focus();
}

function header(me) {
  const who = document.getElementById("who");
  who.textContent = me.auth_enabled ? `${me.subject} · ${me.role}` : `auth off · ${me.role}`;
  const signout = document.getElementById("signout");
  signout.hidden = !token.get();
  signout.onclick = () => { token.clear(); location.reload(); };
}

const ROUTES = [
  [/^#\/sagas\/([^/?]+)(?:\?(.*))?$/, sagaPage, "sagas"],
  [/^#\/sagas\/?(?:\?(.*))?$/, sagasPage, "sagas"],
  [/^#\/executions\/([^/?]+)$/, executionPage, "executions"],
  [/^#\/executions\/?(?:\?(.*))?$/, executionsPage, "executions"],
  [/^#\/attention\/?$/, attentionPage, "attention"],
  [/^#\/approvals\/?(?:\?(.*))?$/, approvalsPage, "approvals"],
];

async function route() {
  cleanup();
  cleanup = () => {};
  const hash = location.hash || "#/sagas";
  for (const [pattern, view, section] of ROUTES) {
    const match = hash.match(pattern);
    if (!match) continue;
    for (const link of document.querySelectorAll("[data-nav]")) {
      if (link.dataset.nav === section) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    const args = match.slice(1).map((part) => (part === undefined ? "" : decodeURIComponent(part)));
    try {
      cleanup = (await view(main, context, ...args)) || (() => {});
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return signIn(explain(error));
      fill(main, h("p", { class: "problem", role: "alert" }, explain(error)));
    }
    return;
  }
  location.hash = "#/sagas";
}

async function start() {
  try {
    context.me = await get("whoami");
  } catch (error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
      return signIn(token.get() ? explain(error) : null);
    }
    fill(main, h("p", { class: "problem", role: "alert" }, explain(error)));
    return;
  }
  header(context.me);
  if (!context.live) {
    context.live = new Live(context.me.websocket_url, document.getElementById("live"));
    context.live.open();
    attentionBadge(context, document.querySelector('[data-nav="attention"]'));
  }
  if (!context.approvals) context.approvals = approvalCount(context.live);
  window.onhashchange = route;
  await route();
}

start();
