// Browser scenarios for the operator console, one per run: `node scenarios.mjs NAME ARGS_JSON`.
// Drives Debian's chromium through playwright-core (no browser download) and prints one JSON
// line with what it measured; a failure prints the reason, saves a screenshot, and exits 1.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

const [name, raw] = process.argv.slice(2);
const args = JSON.parse(raw || "{}");
const SHOTS = args.screenshots;
const TIMEOUT = 60000;

async function launch() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "saga-console-chromium-"));
  const flags = ["--headless", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"];
  if (process.getuid && process.getuid() === 0) flags.push("--no-sandbox");
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: args.chromium || "/usr/bin/chromium", headless: true, args: flags,
    viewport: { width: args.width || 1280, height: args.height || 900 },
    // The time-range inputs are local times: the tests write them in UTC.
    timezoneId: "UTC" });
  context.setDefaultTimeout(TIMEOUT);
  const close = async () => {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  };
  return { context, page: context.pages()[0] || await context.newPage(), close };
}

// Bytes on the wire (compressed bodies plus headers) of every response until the network is idle.
async function measuredLoad(page, url) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
  let bytes = 0, requests = 0;
  cdp.on("Network.loadingFinished", (event) => { bytes += event.encodedDataLength; requests += 1; });
  await page.goto(url, { waitUntil: "networkidle" });
  return { bytes, requests };
}

const api = async (method, route, body, bearer) => {
  const headers = { "Content-Type": "application/json" };
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const response = await fetch(`${args.base}/api/v1/saga/${route}`,
    { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const answer = await response.json();
  if (!response.ok) throw new Error(`${method} ${route}: ${response.status} ${JSON.stringify(answer)}`);
  return answer;
};

const status = (page) => page.locator('[data-testid="status"] .badge').getAttribute("data-status");

async function untilStatus(page, wanted, seen) {
  const deadline = Date.now() + TIMEOUT;
  while (Date.now() < deadline) {
    const now = await status(page).catch(() => null);
    if (now && seen && seen[seen.length - 1] !== now) seen.push(now);
    if (now === wanted) return;
    await page.waitForTimeout(100);
  }
  throw new Error(`the page never showed ${wanted} (saw ${seen ? seen.join(" -> ") : "?"})`);
}

const scenarios = {
  // The documented saga in the list, and its graph: three steps, forward and undo edges.
  async saga_graph({ page }) {
    const load = await measuredLoad(page, `${args.base}/console`);
    const row = page.locator(`tr[data-saga="${args.saga_id}"]`);
    await row.waitFor();
    const listed = { version: await row.locator("td").nth(1).textContent() };
    await row.locator("a").first().click();
    const graph = page.locator('[data-testid="saga-graph"] svg');
    await graph.waitFor();
    const steps = await graph.locator("g.step").evaluateAll((nodes) => nodes.map((n) => n.dataset.step));
    const kinds = await graph.locator("g.step").evaluateAll((nodes) => nodes.map((n) => n.dataset.kind));
    const result = { ...load, listed, steps, kinds, edges: await graph.locator("path.edge").count(),
      undo_edges: await graph.locator("path.undo").count(),
      title: await page.locator("h1").textContent(),
      workflow: await page.locator('[data-testid="workflow"]').textContent(),
      deadline: await page.locator('[data-testid="deadline"]').textContent(),
      version_workflows: await page.locator("td[data-workflow]").evaluateAll((nodes) =>
        nodes.map((n) => n.dataset.workflow)) };
    await page.screenshot({ path: `${SHOTS}/${args.shot || "saga-graph"}.png`, fullPage: true });
    return result;
  },

  // A parent whose child step ran another saga: the child's row in the timeline is a link to
  // the child's execution (its own page names its parent), and back by the parent's link.
  async child_link({ page }) {
    await page.goto(`${args.base}/console#/executions/${args.execution_id}`);
    await untilStatus(page, args.parent_status);
    const link = page.locator(`[data-testid="timeline"] a.child-link[data-child-of="${args.step_id}"]`);
    await link.waitFor();
    const parentPage = { href: await link.getAttribute("href"),
      label: await link.getAttribute("aria-label"),
      cell: await page.locator(`a[data-child-link="${args.step_id}"]`).getAttribute("href") };
    await link.click();
    await page.locator('[data-testid="parent"]').waitFor();
    await untilStatus(page, args.child_status);
    const childPage = { hash: await page.evaluate(() => location.hash),
      parent: await page.locator('[data-testid="parent"]').textContent(),
      steps: await page.locator("tr[data-step]").evaluateAll((rows) => rows.map((r) => r.dataset.step)) };
    await page.screenshot({ path: `${SHOTS}/child-execution.png`, fullPage: true });
    await page.locator('[data-testid="parent"] a').click();
    await untilStatus(page, args.parent_status);
    return { parentPage, childPage, back: await page.evaluate(() => location.hash) };
  },

  // The API's docs page: Swagger UI from the service's own files, every operation listed.
  async api_docs({ page }) {
    const outside = [];
    page.on("request", (request) => {
      if (!request.url().startsWith(args.base)) outside.push(request.url());
    });
    await page.goto(`${args.base}/docs`);
    await page.locator(".opblock").first().waitFor();
    const operations = await page.locator(".opblock").evaluateAll((blocks) => blocks.map((b) => ({
      method: [...b.classList].find((c) => c.startsWith("opblock-") && !c.includes("deprecated")
        && c !== "opblock-summary").replace("opblock-", ""),
      path: (b.querySelector(".opblock-summary-path") || {}).dataset.path })));
    const title = await page.locator(".info .title").textContent();
    await page.screenshot({ path: `${SHOTS}/api-docs.png` });
    // The schemas section (collapsed at first): one entry per component schema, drawn as
    // JSON Schema 2020-12 (OpenAPI 3.1's dialect).
    await page.locator("section.models .models-control").click();
    const heads = page.locator('section.models article[data-json-schema-level="0"] ' +
      "> .json-schema-2020-12-head .json-schema-2020-12__title");
    await heads.first().waitFor();
    const models = await heads.evaluateAll((n) => n.map((t) => t.textContent));
    return { operations, title, outside, models,
      tags: await page.locator(".opblock-tag").evaluateAll((n) => n.map((t) => t.dataset.tag)) };
  },

  // An execution started through the API, watched from RUNNING to COMPLETED with no reload.
  async live_timeline({ page }) {
    let navigations = 0;
    page.on("framenavigated", (frame) => { if (frame === page.mainFrame()) navigations += 1; });
    await page.goto(`${args.base}/console#/sagas`);
    await page.locator('#live[data-state="on"]').waitFor();
    await page.evaluate(() => { window.loadedOnce = true; });
    const started = await api("POST", `sagas/${args.saga_id}/execute`, args.execute);
    await page.evaluate((id) => { location.hash = `#/executions/${id}`; }, started.id);
    const seen = [];
    if (args.release) {
      // A step held by the test's participant: the page shows RUNNING, then it is let go.
      await untilStatus(page, "RUNNING", seen);
      await fetch(args.release, { method: "POST", body: "{}",
        headers: { "Content-Type": "application/json" } });
    }
    await untilStatus(page, "COMPLETED", seen);
    const bars = await page.locator('[data-testid="timeline"] g.bar').evaluateAll((nodes) =>
      nodes.map((n) => ({ step: n.dataset.step, phase: n.dataset.phase, outcome: n.dataset.outcome })));
    return { id: started.id, seen, bars, navigations, same_document: await page.evaluate(() => window.loadedOnce === true),
      live: await page.locator("#live").getAttribute("data-state") };
  },

  // A step that waits, watched with no reload: the test's driver (args.driver) writes the
  // wait's events to the outbox when asked; the page draws the waiting bar when the push
  // says the wait began, grows it with the clock, marks the heartbeat, and ends it when the
  // callback is completed.
  async waiting_bar({ page }) {
    const drive = (what) => fetch(`${args.driver}/${what}`, { method: "POST", body: "{}",
      headers: { "Content-Type": "application/json" } });
    await page.goto(`${args.base}/console#/executions/${args.execution_id}`);
    await page.locator('#live[data-state="on"]').waitFor();
    await page.locator('[data-testid="timeline"] svg').waitFor();
    await page.evaluate(() => { window.loadedOnce = true; });
    const started = Date.now();
    const bar = `[data-testid="timeline"] g.wait[data-step="${args.step}"]`;
    const row = page.locator(`tr[data-step="${args.step}"]`);
    const width = async () => Number(await page.locator(bar).getAttribute("data-width"));
    const seen = async () => ({ label: await page.locator(bar).getAttribute("aria-label"),
      text: await page.locator(`${bar} text`).textContent(), width: await width(),
      status: await row.locator(".badge").getAttribute("data-status"),
      cell: await row.locator("td[data-wait]").textContent() });

    await drive("wait");
    await page.locator(`${bar}[data-open="true"]`).waitFor();
    const opened = await seen();
    opened.ms = Date.now() - started;
    await page.waitForTimeout(1500); // no event meanwhile: only the clock moves
    const grown = await width();

    await drive("heartbeat");
    await page.locator(`${bar} line.heartbeat`).waitFor({ state: "attached" }); // a line: no width
    const beat = await seen();
    await page.screenshot({ path: `${SHOTS}/waiting-bar-open.png`, fullPage: true });

    await drive("complete");
    await page.locator(`${bar}[data-open="false"]`).waitFor();
    await page.waitForFunction(([selector, waiting]) => document.querySelector(selector)
      .querySelector(".badge").dataset.status !== waiting, [`tr[data-step="${args.step}"]`, args.waiting]);
    const closed = await seen();
    await page.waitForTimeout(1200);
    const still = await width();
    await drive("finish");
    await untilStatus(page, "COMPLETED");
    const ended = await seen();
    await page.screenshot({ path: `${SHOTS}/waiting-bar.png`, fullPage: true });
    return { opened, grown, beat, closed, still, ended, ms: Date.now() - started,
      same_document: await page.evaluate(() => window.loadedOnce === true),
      live: await page.locator("#live").getAttribute("data-state") };
  },

  // Approvals decided by a person in the console: two executions wait on an approval; the
  // approvals view lists both with what they decide on and the header counts them; the second
  // one's own page offers the same buttons; the first is approved from the view with a comment
  // and its page follows it to COMPLETED (its next step held until args.release); the second
  // is rejected from the view (a comment is required) and its page follows it to
  // COMPENSATED, the comment as its reason and the step before it undone. The header's count
  // follows each decision live.
  async approvals({ page }) {
    const t0 = Date.now();
    const marks = {};
    await page.goto(`${args.base}/console#/approvals`);
    await page.locator('#live[data-state="on"]').waitFor();
    await page.evaluate(() => { window.loadedOnce = true; });
    const rowOf = (id) => page.locator(`tr[data-execution="${id}"]`);
    await rowOf(args.approve).waitFor();
    await rowOf(args.reject).waitFor();
    const badge = page.locator("#approvals-count");
    const count = async () => Number(await badge.getAttribute("data-count"));
    const countIs = (n) => page.waitForFunction((wanted) =>
      document.getElementById("approvals-count").dataset.count === String(wanted), n);
    await page.waitForFunction(() => document.getElementById("approvals-count").dataset.count !== "");
    const before = { count: await count(), link: (await page.locator("#approvals-link").innerText()).trim(),
      rows: await page.locator("tr[data-callback]").count() };
    const decisions = (where) => where.locator("button[data-decision]").evaluateAll((buttons) =>
      buttons.map((b) => ({ decision: b.dataset.decision, disabled: b.disabled })));
    const listed = {};
    for (const id of [args.approve, args.reject]) {
      listed[id] = { step: (await rowOf(id).locator("td").nth(2).innerText()).trim(),
        input: JSON.parse(await rowOf(id).locator(".decides-on pre").textContent()),
        buttons: await decisions(rowOf(id)) };
    }
    marks.listed = Date.now() - t0;
    await page.screenshot({ path: `${SHOTS}/approvals.png`, fullPage: true });

    // The second one's own page offers the same decision on its waiting step.
    await page.evaluate((id) => { location.hash = `#/executions/${id}`; }, args.reject);
    const panel = page.locator(`[data-testid="approval"][data-step="${args.step}"]`);
    await panel.waitFor();
    const onPage = { buttons: await decisions(panel), input: JSON.parse(await panel.locator("pre").textContent()) };
    await page.screenshot({ path: `${SHOTS}/approval-on-page.png`, fullPage: true });

    // Approved from the view, with a comment.
    const dialog = page.locator("dialog#confirm");
    await page.evaluate(() => { location.hash = "#/approvals"; });
    await rowOf(args.approve).locator('button[data-decision="approve"]').click();
    await dialog.waitFor();
    const asked = { title: await dialog.locator("#confirm-title").textContent(),
      label: await dialog.locator("#confirm-reason-name").textContent() };
    await dialog.locator("#confirm-reason").fill(args.approval_comment);
    await dialog.locator("#confirm-ok").click();
    const answer = page.locator('[data-testid="decision-answer"]');
    await page.locator('[data-testid="decision-answer"][data-ok="true"]').waitFor();
    const approved = { answer: await answer.textContent() };
    await rowOf(args.approve).waitFor({ state: "detached" });
    await countIs(before.count - 1);
    approved.count = await count();
    marks.approved = Date.now() - t0;

    // Its page follows it: RUNNING while its next step is held, then COMPLETED, live.
    await page.evaluate((id) => { location.hash = `#/executions/${id}`; }, args.approve);
    const seenApproved = [];
    await untilStatus(page, "RUNNING", seenApproved);
    await fetch(args.release, { method: "POST", body: "{}", headers: { "Content-Type": "application/json" } });
    await untilStatus(page, "COMPLETED", seenApproved);
    approved.seen = seenApproved;
    approved.wait = await page.locator(`tr[data-step="${args.step}"] td[data-wait]`).textContent();
    marks.completed = Date.now() - t0;

    // Rejected from the view: refused without a comment, then with one.
    await page.evaluate(() => { location.hash = "#/approvals"; });
    await rowOf(args.reject).locator('button[data-decision="reject"]').click();
    await dialog.waitFor();
    await dialog.locator("#confirm-ok").click();
    const rejected = { without_comment: await dialog.locator("#confirm-problem").textContent(),
      still_open: await dialog.evaluate((d) => d.open) };
    await dialog.locator("#confirm-reason").fill(args.rejection_comment);
    await dialog.locator("#confirm-ok").click();
    await page.locator('[data-testid="decision-answer"][data-ok="true"]').waitFor();
    rejected.answer = await answer.textContent();
    await rowOf(args.reject).waitFor({ state: "detached" });
    await countIs(before.count - 2);
    rejected.count = await count();
    rejected.badge_hidden = await badge.isHidden();

    // Its page follows it to COMPENSATED: the comment is the reason, the step before undone.
    await page.evaluate((id) => { location.hash = `#/executions/${id}`; }, args.reject);
    const seenRejected = [];
    await untilStatus(page, "COMPENSATED", seenRejected);
    rejected.seen = seenRejected;
    rejected.reason = await page.locator('[data-testid="reason"]').textContent();
    rejected.bars = await page.locator('[data-testid="timeline"] g.bar').evaluateAll((nodes) =>
      nodes.map((n) => ({ step: n.dataset.step, phase: n.dataset.phase, outcome: n.dataset.outcome })));
    rejected.panels = await page.locator('[data-testid="approval"]').count();
    marks.compensated = Date.now() - t0;
    await page.screenshot({ path: `${SHOTS}/approval-rejected.png`, fullPage: true });
    return { before, listed, on_page: onPage, asked, approved, rejected, marks,
      same_document: await page.evaluate(() => window.loadedOnce === true),
      live: await page.locator("#live").getAttribute("data-state") };
  },

  // A saga that branches and fans out, watched live: the skipped step's mark says its
  // condition and what it read; the fan-out's items are a collapsed group whose counts move as
  // their events arrive (one item is held by the test's participant until args.release); the
  // group opens with a click, stays open across live redraws, and closes from the keyboard.
  // Then the saga's graph: the condition and the fan-out on their steps.
  async branches({ page }) {
    await page.goto(`${args.base}/console#/executions`);
    await page.locator('#live[data-state="on"]').waitFor();
    await page.evaluate(() => { window.loadedOnce = true; });
    const t0 = Date.now();
    const marks = {};
    const started = await api("POST", `sagas/${args.saga_id}/execute`, args.execute);
    await page.evaluate((id) => { location.hash = `#/executions/${id}`; }, started.id);
    const timeline = '[data-testid="timeline"]';
    const skip = page.locator(`${timeline} g.skip[data-step="${args.skipped}"]`);
    await skip.waitFor();
    marks.skip_shown = Date.now() - t0;
    const skipped = { label: await skip.getAttribute("aria-label"), text: await skip.locator("text").textContent(),
      status: await page.locator(`tr[data-step="${args.skipped}"] .badge`).getAttribute("data-status"),
      cell: await page.locator(`td [data-condition="${args.skipped}"]`).textContent() };
    const summary = `${timeline} g.items-summary[data-step="${args.fanout}"]`;
    const counts = async () => JSON.parse(await page.locator(summary).getAttribute("data-counts"));
    const toggle = page.locator(`${timeline} g.toggle[data-toggle="${args.fanout}"]`);
    const items = page.locator(`${timeline} text.item-label`);
    const seen = async () => ({ counts: await counts(), text: await page.locator(`${summary} text`).textContent(),
      expanded: await toggle.getAttribute("aria-expanded"), item_rows: await items.count(),
      table_rows: await page.locator("tr.item-row").count(),
      status: await status(page) });
    // Live: the first two items ended (one refused), the last one is held.
    await page.waitForFunction((selector) => {
      const node = document.querySelector(selector);
      const got = node ? JSON.parse(node.dataset.counts) : {};
      return got.SUCCEEDED === 1 && got.FAILED === 1;
    }, summary);
    marks.counts_shown = Date.now() - t0;
    const during = await seen();
    await toggle.click();
    await items.nth(args.items - 1).waitFor();
    const opened = await seen();
    await fetch(args.release, { method: "POST", body: "{}", headers: { "Content-Type": "application/json" } });
    await untilStatus(page, "COMPLETED");
    marks.completed = Date.now() - t0;
    await page.waitForFunction((selector) => JSON.parse(document.querySelector(selector).dataset.counts).SUCCEEDED === 2,
      summary);
    const ended = await seen();
    ended.item_labels = await items.evaluateAll((nodes) => nodes.map((n) => n.lastChild.textContent));
    ended.item_statuses = await page.locator("tr.item-row .badge").evaluateAll((nodes) =>
      nodes.map((n) => n.dataset.status));
    ended.item_bars = await page.locator(`${timeline} g.bar[data-step*="["]`).count();
    await page.screenshot({ path: `${SHOTS}/branches.png`, fullPage: true });
    // A live redraw may replace the toggle between the locator finding it and focusing it
    // (focus then lands on a detached node): focus until the page's own toggle has it (a
    // redraw keeps the focus on a toggle once it has it), at most five times.
    for (let tries = 0; tries < 5; tries += 1) {
      await page.locator(`${timeline} g.toggle[data-toggle="${args.fanout}"]`).focus();
      if (await page.evaluate((id) => Boolean(document.activeElement && document.activeElement.isConnected
        && document.activeElement.dataset.toggle === id), args.fanout)) break;
    }
    await page.keyboard.press("Enter");
    await page.locator(`${timeline} g.toggle[data-toggle="${args.fanout}"][aria-expanded="false"]`).waitFor();
    const closed = await seen();
    closed.focused = await page.evaluate(() => document.activeElement && document.activeElement.dataset.toggle);
    // The saga's page: its graph and its steps table.
    await page.evaluate((id) => { location.hash = `#/sagas/${id}`; }, args.saga_id);
    const graph = page.locator('[data-testid="saga-graph"] svg');
    await graph.waitFor();
    const node = (id) => graph.locator(`g.step[data-step="${id}"]`);
    const drawn = {
      when: await node(args.skipped).getAttribute("data-when"),
      when_text: await node(args.skipped).locator("text.step-when").textContent(),
      gates: await graph.locator("path.gate").count(),
      for_each: await node(args.fanout).getAttribute("data-for-each"),
      fanout_text: await node(args.fanout).locator("text.step-fanout").textContent(),
      stacks: await node(args.fanout).locator("rect.stack").count(),
      fanout_label: await node(args.fanout).getAttribute("aria-label"),
      counts: await page.locator('[data-testid="step-counts"]').textContent(),
    };
    await page.screenshot({ path: `${SHOTS}/branches-graph.png`, fullPage: true });
    marks.done = Date.now() - t0;
    return { id: started.id, skipped, during, opened, ended, closed, drawn, marks,
      same_document: await page.evaluate(() => window.loadedOnce === true),
      live: await page.locator("#live").getAttribute("data-state") };
  },

  // A failed execution: its reason, its failed attempts, its compensation bars, and each
  // step's error as the steps table shows it (its type and text).
  async compensation_bars({ page }) {
    await page.goto(`${args.base}/console#/executions/${args.execution_id}`);
    await page.locator('[data-testid="timeline"] g.bar[data-phase="compensation"]').first().waitFor();
    const bars = await page.locator('[data-testid="timeline"] g.bar').evaluateAll((nodes) =>
      nodes.map((n) => {
        const box = n.querySelector("rect").getBoundingClientRect();
        const svg = n.ownerSVGElement.parentElement.getBoundingClientRect(); // what is seen
        return { step: n.dataset.step, phase: n.dataset.phase, outcome: n.dataset.outcome,
          label: n.getAttribute("aria-label"),
          inside: box.width > 0 && box.left >= svg.left && box.right <= svg.right };
      }));
    const errors = Object.fromEntries(await page.locator("tr[data-step] td[data-error-type]").evaluateAll(
      (cells) => cells.map((td) => [td.closest("tr").dataset.step,
        { type: td.dataset.errorType, text: td.textContent }])));
    const result = { status: await status(page), reason: await page.locator('[data-testid="reason"]').textContent(),
      bars, errors };
    await page.locator('[data-testid="timeline"] g.bar.failed').first().focus();
    await page.screenshot({ path: `${SHOTS}/${args.shot || "execution"}.png`, fullPage: true });
    return result;
  },

  // An operator's action from the page (retry_compensation unless args.action says): confirm,
  // the API's answer, then the status it leads to (args.wanted, COMPENSATED by default).
  async retry_compensation({ page }) {
    await page.goto(`${args.base}/console#/executions/${args.execution_id}`);
    await page.locator('#live[data-state="on"]').waitFor();
    const before = await status(page);
    const button = page.locator(`button[data-action="${args.action || "retry_compensation"}"]`);
    await button.click();
    const dialog = page.locator("dialog#confirm");
    await dialog.waitFor();
    const question = await dialog.locator("#confirm-text").textContent();
    await page.keyboard.press("Escape"); // cancelling sends nothing
    await dialog.waitFor({ state: "hidden" });
    const afterCancel = await status(page);
    await button.click();
    await dialog.locator("#confirm-ok").click();
    const answer = page.locator('[data-testid="action-answer"][data-ok="true"]');
    await answer.waitFor();
    const said = await answer.textContent();
    const seen = [before];
    await untilStatus(page, args.wanted || "COMPENSATED", seen);
    await page.screenshot({ path: `${SHOTS}/${args.action || "retried"}.png`, fullPage: true });
    return { before, question, after_cancel: afterCancel, answer: said, seen,
      buttons_left: await page.locator("button[data-action]").count() };
  },

  // A saga with 1,000 executions: pages of 50 (Next, Previous), and a time range the API
  // filters. Each step is timed from the click to the new rows on screen.
  async bulk_list({ page }) {
    const rows = () => page.locator("table.list tbody tr").evaluateAll((trs) =>
      trs.map((tr) => tr.dataset.execution));
    const timed = async (act, previousFirst) => {
      const started = Date.now();
      await act();
      await page.waitForFunction((first) => {
        const tr = document.querySelector("table.list tbody tr");
        return tr && tr.dataset.execution !== first;
      }, previousFirst);
      return Date.now() - started;
    };
    const started = Date.now();
    await page.goto(`${args.base}/console#/executions?saga_id=${args.saga_id}`);
    await page.locator("table.list tbody tr").first().waitFor();
    const first = { ms: Date.now() - started, ids: await rows() };
    const next = page.locator("nav.pager a", { hasText: "Next page" });
    const pages = [first.ids];
    const ms = [];
    for (let i = 0; i < 3; i += 1) {
      ms.push(await timed(() => next.click(), pages[pages.length - 1][0]));
      pages.push(await rows());
    }
    const previous = page.locator("nav.pager a", { hasText: "Previous page" });
    ms.push(await timed(() => previous.click(), pages[pages.length - 1][0]));
    const back = await rows();
    await page.locator('input[name="from"]').fill(args.from);
    await page.locator('input[name="to"]').fill(args.to);
    ms.push(await timed(() => page.locator('form.filters button[type="submit"]').click(),
      back[0]));
    const filtered = await rows();
    const filteredMore = await next.count();
    await page.screenshot({ path: `${SHOTS}/executions-1000.png`, fullPage: false });
    return { first_ms: first.ms, click_ms: ms, pages, back, filtered, filtered_more: filteredMore };
  },

  // Auth on: asked for a token; a bad one explained; a reader sees no actions, an operator does.
  // Start an execution from a saga's page (its input checked before sending), watch it end
  // live; find it by id and its saga by id; a saga's per-status link keeps the saga filter.
  async start_find({ page }) {
    await page.goto(`${args.base}/console#/sagas/${encodeURIComponent(args.saga_id)}`);
    const editor = page.locator("#start-input");
    await editor.fill("{not json");
    const refused = await page.locator('[data-testid="start-problem"]').textContent();
    await editor.fill(JSON.stringify(args.input));
    await page.locator('[data-testid="start-form"] button[type="submit"]').click();
    await page.waitForURL(/#\/executions\/[^/?]+$/);
    const executionId = decodeURIComponent(page.url().split("#/executions/")[1]);
    const seen = [];
    await untilStatus(page, "COMPLETED", seen);
    await page.goto(`${args.base}/console#/executions`);
    await page.locator('[data-testid="find"]').fill(executionId);
    await page.keyboard.press("Enter");
    await page.waitForURL(new RegExp(`#/executions/${executionId}$`));
    await page.locator('[data-testid="status"] .badge').waitFor();
    const found = await page.locator("main").textContent();
    await page.goto(`${args.base}/console#/executions`);
    await page.locator('[data-testid="find"]').fill("no-such-id-anywhere");
    await page.keyboard.press("Enter");
    const missing = page.locator('[data-testid="find-problem"]');
    await page.waitForFunction(() => document.querySelector('[data-testid="find-problem"]').textContent);
    const nothing = await missing.textContent();
    await page.locator('[data-testid="find"]').fill(args.saga_id);
    await page.keyboard.press("Enter");
    await page.waitForURL(/saga_id=/);
    await page.goto(`${args.base}/console#/sagas/${encodeURIComponent(args.saga_id)}`);
    const chip = page.locator('[data-testid="by-status"] a[data-status="COMPLETED"]');
    await chip.click();
    await page.waitForURL(/status=COMPLETED/);
    await page.locator("tr[data-execution]").first().waitFor();
    const sagasListed = await page.locator("tr[data-execution] td:nth-child(2) a").evaluateAll(
      (links) => [...new Set(links.map((a) => a.textContent))]);
    const started = await page.locator("tr[data-execution] td:nth-child(4)").first().textContent();
    return { refused, execution_id: executionId, seen, found, nothing,
      status_link: page.url().split("#")[1], sagas_listed: sagasListed, started };
  },

  async auth_reader({ page }) {
    await page.goto(`${args.base}/console#/executions/${args.execution_id}`);
    const input = page.locator("input#token");
    await input.waitFor();
    const asked = await page.locator("h1").textContent();
    await input.fill("not-a-jwt");
    await page.keyboard.press("Enter");
    const problem = page.locator(".signin .problem");
    await problem.waitFor();
    const refusal = await problem.textContent();
    await page.locator("input#token").fill(args.reader);
    await page.keyboard.press("Enter");
    await page.locator('[data-testid="status"] .badge').waitFor();
    const reader = { who: await page.locator("#who").textContent(),
      status: await status(page), live: null,
      buttons: await page.locator("button[data-action]").count(),
      stored: await page.evaluate(() => Object.keys(sessionStorage)) };
    await page.locator('#live[data-state="on"]').waitFor();
    reader.live = "on";
    await page.screenshot({ path: `${SHOTS}/reader.png`, fullPage: true });
    await page.locator("#signout").click();
    await page.locator("input#token").waitFor();
    await page.locator("input#token").fill(args.operator);
    await page.keyboard.press("Enter");
    await page.locator('[data-testid="status"] .badge').waitFor();
    const operator = { who: await page.locator("#who").textContent(),
      buttons: await page.locator("button[data-action]").evaluateAll((b) => b.map((x) => x.dataset.action)) };
    return { asked, refusal, reader, operator };
  },

  // The triage queue and an execution's history: a parked execution is listed under "Needs
  // attention" (and counted on its nav link) until the scenario resolves it through the API;
  // the list drops it live. Its page then lists its history with who acted and why, and the
  // filter narrows the rows to a type.
  async history_and_attention({ page }) {
    await page.goto(`${args.base}/console#/attention`);
    await page.locator('#live[data-state="on"]').waitFor();
    const row = page.locator(`[data-testid="attention"] tr[data-execution="${args.execution_id}"]`);
    await row.waitFor();
    const counted = Number(await page.locator('[data-testid="attention-count"]').getAttribute("data-count"));
    await api("POST", `executions/${args.execution_id}/resolve`, { reason: args.reason });
    await row.waitFor({ state: "detached" }); // live: no reload
    await page.goto(`${args.base}/console#/executions/${args.execution_id}`);
    const history = page.locator('[data-testid="history"]');
    await history.locator(`tr[data-type="${args.last_type}"]`).waitFor();
    const rows = () => history.locator("tbody tr").evaluateAll((trs) => trs.map((tr) => ({
      type: tr.dataset.type, sequence: Number(tr.dataset.sequence),
      actor: tr.querySelector("[data-actor]") ? tr.querySelector("[data-actor]").dataset.actor : null,
      why: tr.querySelector("[data-why]").textContent })));
    const all = await rows();
    await page.locator('[data-testid="history-filter"]').fill(args.last_type);
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid="history"] tbody tr').length < n,
      all.length);
    const filtered = await rows();
    await page.screenshot({ path: `${SHOTS}/history.png`, fullPage: true });
    // What each step was sent, as the steps table and the attempts list show it.
    const sent = await page.locator("[data-input-of]").evaluateAll((nodes) =>
      Object.fromEntries(nodes.map((node) => [node.dataset.inputOf,
        node.querySelector("pre, code, .json") ? node.querySelector("pre, code, .json").textContent : node.textContent])));
    const attemptInputs = await page.locator("[data-attempt-input]").evaluateAll((nodes) =>
      nodes.map((node) => node.dataset.attemptInput));
    return { counted, rows: all, filtered, sent, attemptInputs,
      resolution: await page.locator('[data-testid="resolution"]').textContent() };
  },
};

const { page, close } = await launch();
const problems = [];
page.on("pageerror", (error) => problems.push(String(error)));
const started = Date.now();
try {
  const result = await scenarios[name]({ page });
  console.log(JSON.stringify({ ok: true, scenario: name, ms: Date.now() - started, page_errors: problems, ...result }));
} catch (error) {
  await page.screenshot({ path: `${SHOTS}/${name}-failure.png`, fullPage: true }).catch(() => {});
  console.log(JSON.stringify({ ok: false, scenario: name, error: String(error.stack || error),
    page_errors: problems, text: await page.locator("main").innerText().catch(() => "") }));
  process.exitCode = 1;
} finally {
  await close();
}
