// The dashboard in Debian's headless Chromium, driven by Playwright: sign in, watch a call
// arrive in the live feed, suspend and resume an agent from its page, approve a changed
// MCP tool, filter the events table, sign out. Run by tests/e2e/test_dashboard.py, which
// starts the gateway, makes the first call and changes the tool; a screenshot of each page
// goes to $ARTIFACTS. Exits non-zero on the first failed check.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}
const ADMIN = env("ADMIN_URL");
const TOKEN = env("ADMIN_TOKEN");
const GATEWAY = env("GATEWAY_URL");
const KEY = env("AGENT_KEY");
const AGENT = env("AGENT_ID");
const MODEL = env("MODEL");
const OUT = env("ARTIFACTS");
mkdirSync(OUT, { recursive: true });

/** A chat completion straight to the gateway, as the agent. */
async function chat(content) {
  const res = await fetch(`${GATEWAY}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content }] }),
  });
  return { status: res.status, reason: res.headers.get("x-airlock-reason") };
}

async function eventually(check, what, ms = 5000) {
  const until = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  // As root in a container, without the network Chromium's background services expect.
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
context.setDefaultTimeout(10_000);
const page = await context.newPage();
// Script errors and CSP violations both reach the console.
const problems = [];
page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
page.on("console", (m) => { if (m.type() === "error") problems.push(`console: ${m.text()}`); });
const shot = (name) => page.screenshot({ path: `${OUT}/${name}.png`, fullPage: true });
const step = (name) => console.log(`step: ${name}`);

try {
  step("a wrong token is refused, the right one signs in");
  await page.goto(`${ADMIN}/`);
  await page.locator("#login-form").waitFor();
  await page.fill("#token", "not-the-admin-token");
  await page.click("#login-form button[type=submit]");
  await page.locator("#login-error").waitFor();
  assert.match(await page.textContent("#login-error"), /not the admin token/);
  await page.fill("#token", TOKEN);
  await page.click("#login-form button[type=submit]");
  await page.locator("h1", { hasText: "Overview" }).waitFor();
  // The wrong token's 401 is the one error the console may show.
  problems.length = 0;

  step("the token is in no URL and no script-readable storage; the session cookie is HttpOnly");
  assert(!page.url().includes(TOKEN));
  const readable = await page.evaluate(() =>
    JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie);
  assert(!readable.includes(TOKEN) && !readable.includes("airlock_session"), readable);
  const session = (await context.cookies()).find((c) => c.name === "airlock_session");
  assert(session?.httpOnly && session.sameSite === "Strict", JSON.stringify(session));

  step("the overview counts the call made before the browser opened");
  const calls = page.locator(".stat", { hasText: "Calls today" }).locator(".value");
  assert(Number((await calls.textContent()).replace(/\D/g, "")) >= 1);
  const spend = page.locator(".stat", { hasText: "Spend today" }).locator(".value");
  assert.notEqual(await spend.textContent(), "$0");
  const bars = await page.locator("svg.chart rect.bar").evaluateAll((rs) => rs.map((r) => Number(r.getAttribute("height"))));
  assert.equal(bars.length, 24);
  assert(bars.some((height) => height > 0), "this hour's spend has a bar");
  await page.locator("section", { hasText: "Top agents this month" }).getByText(AGENT).waitFor();
  await shot("overview");

  step("a call made now appears in the live feed");
  await page.click("nav a[data-page=live]");
  await page.locator(".badge.live").waitFor();
  assert.equal((await chat("hello from the browser test")).status, 200);
  const fresh = page.locator("#live-calls tr.fresh", { hasText: AGENT }).first();
  await fresh.waitFor();
  assert.match(await fresh.textContent(), /chat-upstream/);
  const id = await fresh.getAttribute("data-id");
  await eventually(async () => {
    const res = await page.request.get(`${ADMIN}/api/events?limit=5&agent=${AGENT}`);
    return (await res.json()).events.some((e) => e.id === id);
  }, "the live row's event in the ledger");
  await shot("live");

  step("the agent page shows its budget and suspends and resumes it");
  await fresh.getByRole("link", { name: AGENT }).click();
  await page.locator("h1", { hasText: `Agent ${AGENT}` }).waitFor();
  await page.locator(".budget", { hasText: "Agent · day" }).locator(".meter").waitFor();
  await page.locator("section", { hasText: "Models, last 30 days" }).getByText("mock/chat-upstream").waitFor();
  await page.fill("input[aria-label='suspension reason']", "runaway loop, checking");
  await page.getByRole("button", { name: "Suspend" }).click();
  await page.locator(".head .badge.suspended").waitFor();
  await page.getByText("runaway loop, checking").waitFor();
  assert.deepEqual(await chat("am I stopped?"), { status: 429, reason: "suspended" });
  await shot("agent");
  await page.getByRole("button", { name: "Resume" }).click();
  await page.locator(".head .badge.active").waitFor();
  assert.equal((await chat("back again")).status, 200);

  step("the suspension is an alert on the overview");
  await page.click("nav a[data-page=overview]");
  await page.locator("section", { hasText: "Latest alerts" }).locator("tr", { hasText: "agent_suspended" })
    .getByRole("link", { name: AGENT }).waitFor();

  step("a changed MCP tool is approved from the inventory");
  await page.click("nav a[data-page=tools]");
  const tool = page.locator("tr", { hasText: "mutable" });
  await tool.locator(".badge.changed").waitFor();
  await tool.locator(".definition .now", { hasText: "now from a cache" }).waitFor();
  await shot("tools");
  await tool.getByRole("button", { name: "Approve" }).click();
  await page.locator("tr", { hasText: "mutable" }).locator(".badge.approved").waitFor();

  step("the events table filters by outcome");
  await page.click("nav a[data-page=events]");
  await page.selectOption("select[name=outcome]", "denied");
  await page.click("form.toolbar button[type=submit]");
  await eventually(async () => {
    const outcomes = await page.locator("#events tbody tr[data-id] .badge").allTextContents();
    return outcomes.length >= 1 && outcomes.every((o) => o === "denied");
  }, "only denied calls in the table");
  await page.locator("#events tbody tr", { hasText: "suspended" }).first().waitFor();
  assert.match(page.url(), /#\/events\?outcome=denied/);
  await page.locator("#events tbody tr[data-id]").first().click();
  await page.locator("#events td.detail pre", { hasText: '"reason": "suspended"' }).waitFor();
  await shot("events");

  step("signing out ends the session");
  await page.click("#sign-out");
  await page.locator("#login-form").waitFor();
  assert.equal((await page.request.get(`${ADMIN}/api/agents`)).status(), 401);

  assert.deepEqual(problems, []);
  console.log("ok");
} catch (e) {
  await shot("failure").catch(() => {});
  console.error(problems.join("\n"));
  throw e;
} finally {
  await browser.close();
}
