// End-to-end walk through the dashboard in headless Chromium (Debian's /usr/bin/chromium driven by
// playwright-core; no browser download). The pytest driver tests/browser/test_dashboard.py starts a
// real `cloudarb serve` with the bundled snapshot and runs this script with:
//   CLOUDARB_E2E_URL       the dashboard as the browser should reach it (a plain-HTTP, non-localhost
//                          host name: not a secure context, so no crypto.randomUUID)
//   CLOUDARB_E2E_RESOLVE   "host:port" -> the loopback port the host name maps to
//   CLOUDARB_E2E_EMAIL / CLOUDARB_E2E_PASSWORD   an admin of the server
//   CLOUDARB_SCREENSHOTS   where screenshots go (default frontend/e2e/screenshots)
//   CLOUDARB_E2E_LIVE_PRICE  the $/instance-hour the provider now quotes for the seeded lambda us-east-1
//                          H100 offer: the walk asks the server to refresh lambda while the prices page
//                          is open and waits for that price to arrive over /ws/prices (skipped if unset)
// Every step asserts what a user would see; the first failure exits non-zero with a screenshot. A page
// error, a console error or a 5xx answer anywhere in the walk fails it too (Chromium logs every failed
// resource load, 4xx included, as a console error: a missing /favicon.ico failed the walk this way).
// Prints one JSON line of step timings at the end.
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const base = process.env.CLOUDARB_E2E_URL ?? "http://127.0.0.1:8000";
const shots = process.env.CLOUDARB_SCREENSHOTS || join(here, "screenshots");
const email = process.env.CLOUDARB_E2E_EMAIL ?? "demo@example.com";
const password = process.env.CLOUDARB_E2E_PASSWORD ?? "";
const resolve = process.env.CLOUDARB_E2E_RESOLVE ?? "";
mkdirSync(shots, { recursive: true });

const args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
  "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"];
if (resolve) args.push(`--host-resolver-rules=MAP ${new URL(base).hostname} ${resolve}`);

const timings = {};
const errors = [];
let current = null;
// The API as this script (not the browser) reaches it: the mapped host name only resolves in Chromium.
const apiBase = `${resolve ? `http://${resolve}` : base}/api`;

/** Record what must not happen while a page is open: uncaught errors, console errors, 5xx answers. */
function watch(page) {
  page.on("pageerror", (err) => errors.push(`page error: ${String(err)}`));
  page.on("console", (msg) => {
    if (msg.type() === "error") errors.push(`console error on ${page.url()}: ${msg.text()} (${msg.location().url ?? "?"})`);
  });
  page.on("response", (res) => {
    if (res.status() >= 500) errors.push(`${res.status()} from ${res.request().method()} ${res.url()}`);
  });
}

async function apiToken() {
  const res = await fetch(`${apiBase}/auth/login`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ email, password }),
  });
  check(res.ok, `login for the API failed: ${res.status}`);
  return (await res.json()).access_token;
}

function check(cond, message) {
  if (!cond) throw new Error(message);
}

async function step(name, fn) {
  const t0 = Date.now();
  process.stderr.write(`step: ${name}\n`);
  await fn();
  timings[name] = (Date.now() - t0) / 1000;
}

async function shot(page, name) {
  await page.mouse.move(0, 0); // no chart tooltip left open under the pointer
  await page.waitForTimeout(150); // let charts finish their first layout pass
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

async function signIn(page) {
  await page.goto(`${base}/`);
  await page.getByLabel("E-mail").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Offers" }).waitFor();
}

const PHONE = 390;

async function noSideways(page, label) {
  const width = PHONE;
  const scroll = await page.evaluate(() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth));
  check(scroll <= width + 1, `${label}: the page scrolls sideways at ${width}px (content ${scroll}px wide)`);
  const header = await page.locator("header").boundingBox();
  check(header && header.width <= width + 1, `${label}: the header overflows`);
}

async function waitForResult(page) {
  await page.getByRole("heading", { name: "Result", exact: true }).waitFor({ timeout: 60_000 });
}

const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args });
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();
  current = page;
  watch(page);

  await step("sign in", async () => {
    await signIn(page);
    const secure = await page.evaluate(() => window.isSecureContext);
    const hasUuid = await page.evaluate(() => typeof crypto.randomUUID === "function");
    check(resolve === "" || (!secure && !hasUuid), `expected an insecure origin without crypto.randomUUID (secure=${secure})`);
  });

  let gpu = "";
  await step("offers and filters in the URL", async () => {
    const rows = page.locator("table.data tbody tr");
    await rows.first().waitFor();
    const select = page.getByLabel("GPU type");
    await page.waitForFunction(() => document.querySelectorAll("select option").length > 3);
    gpu = (await page.locator("table.data tbody tr td:nth-child(4) a").first().textContent()) ?? "";
    check(gpu, "no GPU in the first offer");
    await select.selectOption(gpu);
    await page.getByLabel("Market").selectOption("on_demand");
    await page.getByRole("button", { name: "Apply" }).click();
    await page.waitForFunction(() => window.location.hash.includes("gpu="));
    const filtered = await page.waitForFunction((name) => {
      const cells = [...document.querySelectorAll("table.data tbody tr td:nth-child(4)")].map((td) => td.textContent);
      return cells.length > 0 && cells.every((c) => c === name);
    }, gpu, { timeout: 10_000 }).then(() => true, () => false);
    const models = await page.locator("table.data tbody tr td:nth-child(4)").allTextContents();
    check(filtered, `filtered offers are not all ${gpu}: ${models.slice(0, 3)}`);
    await page.reload();
    await rows.first().waitFor();
    check((await page.getByLabel("GPU type").inputValue()) === gpu, "the GPU filter did not survive a reload");
    await shot(page, "01-offers-filtered");
  });

  // The driver stores five days of lambda H100/A100 prices (the snapshot has current offers only).
  const historyGpu = process.env.CLOUDARB_E2E_HISTORY_GPU ?? "H100 SXM";
  await step("price history of one offer and of a GPU model", async () => {
    await page.goto(`${base}/#/offers?gpu=${encodeURIComponent(historyGpu)}&provider=lambda&max_age_h=24`);
    await page.waitForFunction((name) => {
      const cells = [...document.querySelectorAll("table.data tbody tr td:nth-child(4)")].map((td) => td.textContent);
      return cells.length > 0 && cells.every((c) => c === name);
    }, historyGpu);
    await page.getByRole("link", { name: /price history of/ }).first().click();
    await page.getByRole("img", { name: "price history of one offer" }).waitFor();
    await page.locator(".recharts-line").first().waitFor();
    await shot(page, "02-prices-offer");
    await page.goto(`${base}/#/prices?gpu=${encodeURIComponent(historyGpu)}&days=7`);
    await page.getByRole("img", { name: "price history per GPU-hour" }).waitFor();
    const several = await page.waitForFunction(() => document.querySelectorAll(".recharts-line").length >= 3, null, { timeout: 15_000 })
      .then(() => true, () => false);
    check(several, `expected a line per provider, region and market, got ${await page.locator(".recharts-line").count()}`);
    await page.locator(".conn-open").waitFor({ timeout: 15_000 }); // the live /ws/prices socket is connected
    await page.getByRole("table", { name: "provider freshness" }).waitFor();
    await shot(page, "03-prices-gpu");
  });

  const livePrice = Number(process.env.CLOUDARB_E2E_LIVE_PRICE ?? "");
  if (Number.isFinite(livePrice) && livePrice > 0) {
    await step("a live price change over /ws/prices", async () => {
      // still on the GPU's prices with the socket open; a reload would lose this mark
      await page.evaluate(() => { window.__e2eSamePage = true; });
      const lambdaRow = page.getByRole("table", { name: "provider freshness" }).getByRole("row")
        .filter({ has: page.getByRole("cell", { name: "lambda", exact: true }) });
      const lastRefresh = lambdaRow.locator("td").nth(4);
      check((await lastRefresh.textContent()) === "—", "lambda was refreshed before the walk asked for it");
      const east = page.getByRole("table", { name: "latest prices" }).getByRole("row")
        .filter({ has: page.getByRole("cell", { name: "lambda us-east-1 on-demand", exact: true }) });
      const perGpu = `$${(livePrice / 8).toFixed(2)}`;
      const before = await east.locator("td").nth(1).textContent();
      check(before !== perGpu, `the seeded price already is ${perGpu}`);
      const curves = () => page.locator(".recharts-line-curve").evaluateAll((ps) => ps.map((p) => p.getAttribute("d")).join("|"));
      const drawn = await curves();

      const token = await apiToken();
      const res = await fetch(`${apiBase}/providers/lambda/refresh`, { method: "POST", headers: { Authorization: `Bearer ${token}` } });
      check(res.status === 202, `refresh of lambda was not accepted: ${res.status} ${await res.text()}`);

      const feed = page.getByRole("list", { name: "live price changes" });
      await feed.getByText(new RegExp(`lambda us-east-1 H100 SXM: \\$[\\d.,]+ → \\$${livePrice.toFixed(2)}`)).waitFor({ timeout: 30_000 });
      await east.locator("td").nth(1).getByText(perGpu, { exact: true }).waitFor({ timeout: 10_000 });
      check((await curves()) !== drawn, "the chart's lines were not redrawn with the new point");
      await page.waitForFunction(() => {
        const rows = [...document.querySelectorAll("table[aria-label='provider freshness'] tbody tr")];
        const row = rows.find((r) => r.querySelector("td")?.textContent === "lambda");
        return row && row.querySelectorAll("td")[4]?.textContent !== "—" && row.querySelectorAll("td")[1]?.textContent === "fresh";
      }, null, { timeout: 10_000 });
      check(await page.evaluate(() => window.__e2eSamePage === true), "the page reloaded");
      await shot(page, "03b-prices-live");
    });
  }

  await step("GPU catalog", async () => {
    await page.goto(`${base}/#/gpus`);
    await page.getByRole("table", { name: "GPU catalog" }).waitFor();
    await page.locator(".recharts-bar-rectangle").first().waitFor();
    await shot(page, "04-gpus");
  });

  // The driver ran the price forecast job on the seeded week: H100 series a model beats last value on,
  // A100 ones (a random walk) it does not.
  await step("forecast fan charts with their skill statements", async () => {
    await page.goto(`${base}/#/forecasts`);
    await page.getByRole("heading", { name: "Forecasts" }).waitFor();
    const fans = page.getByRole("img", { name: /^forecast fan of price:/ });
    await fans.first().waitFor({ timeout: 15_000 });
    const cards = await fans.count();
    check(cards >= 4, `expected a fan chart per seeded series, got ${cards}`);
    const first = fans.first();
    await first.locator("path.recharts-area-area").first().waitFor();
    const bands = await first.locator("path.recharts-area-area").evaluateAll((paths) =>
      paths.map((p) => (p.getAttribute("d") ?? "").split(/[MLZ]/).filter(Boolean).length));
    check(bands.length >= 2 && bands.every((n) => n >= 10), `expected nested quantile bands drawn over the horizon, got ${bands}`);
    check((await first.locator(".recharts-line-curve").count()) >= 1, "no median or point forecast line");
    const ticks = await first.locator(".recharts-cartesian-axis-tick-value").allTextContents();
    const times = ticks.filter((t) => /\d\d \w{3}, \d\d:\d\d/.test(t)).length;
    const values = ticks.filter((t) => /^\d+(\.\d+)?$/.test(t.trim())).length;
    check(times >= 2 && values >= 2, `axis tick labels missing (times ${times}, values ${values}): ${ticks}`);
    check((await first.locator(".recharts-label").allTextContents()).some((t) => t.includes("$ per instance-hour")),
      "the value axis does not say its unit");
    const notes = await page.getByRole("note", { name: "skill over last value" }).allTextContents();
    check(notes.length === cards, `expected a skill statement per fan chart, got ${notes.length} for ${cards}`);
    check(notes.some((t) => t.startsWith("Beats last value out of sample: ")), `no served model with skill: ${notes.join(" | ")}`);
    check(notes.some((t) => t.startsWith("No skill over last value")), `no 'no skill over last value' statement: ${notes.join(" | ")}`);
    const figures = await page.getByLabel("backtest figures").first().textContent();
    check(/MASE\s*\d/.test(figures ?? "") && /Backtest origins\s*\d/.test(figures ?? ""), `backtest figures missing: ${figures}`);
    await shot(page, "05-forecasts");
    // the same job on demand from the page, followed over /ws/jobs
    await page.getByRole("button", { name: "Build price forecasts now" }).click();
    await page.getByRole("status", { name: "forecast job" }).filter({ hasText: /^finished/ }).waitFor({ timeout: 60_000 });
    await fans.first().waitFor();
    await page.getByLabel("GPU model").selectOption(historyGpu);
    await page.waitForFunction(() => window.location.hash.includes("gpu="));
    await page.waitForFunction((name) => {
      const titles = [...document.querySelectorAll(".chart-panel h3")].map((h) => h.textContent ?? "");
      return titles.length > 0 && titles.every((t) => t.includes(name));
    }, historyGpu, { timeout: 10_000 });
  });

  let firstId = "";
  await step("optimize and watch it live", async () => {
    await page.goto(`${base}/#/optimize`);
    await page.getByLabel("Name").first().fill("e2e fleet");
    await page.getByLabel("Min GPUs").fill("16");
    await page.getByLabel("GPUs per node").fill("8");
    await page.getByLabel("Pareto points").fill("3");
    await page.getByRole("button", { name: "Optimize" }).click();
    await page.waitForFunction(() => /#\/optimizations\/.+/.test(window.location.hash));
    firstId = await page.evaluate(() => window.location.hash.split("/")[2]);
    await waitForResult(page);
    await page.getByRole("img", { name: "savings against baselines" }).waitFor();
    await page.getByRole("img", { name: "allocation chart" }).waitFor();
    await page.getByRole("img", { name: "Pareto front chart" }).waitFor();
    const lines = await page.getByRole("table", { name: "allocation" }).locator("tbody tr").count();
    check(lines > 0, "no allocation lines");
    await shot(page, "06-result");
  });

  await step("export a file", async () => {
    await page.getByLabel("export format").selectOption("csv");
    const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Export" }).click()]);
    const path = join(shots, "export.csv");
    await download.saveAs(path);
    check((await download.suggestedFilename()).length > 0, "export without a file name");
  });

  await step("pick a Pareto point and re-solve", async () => {
    const options = await page.getByLabel("Pareto point").locator("option").count();
    check(options > 1, "the Pareto front has no points");
    await page.getByLabel("Pareto point").selectOption({ index: options - 1 });
    await page.getByRole("button", { name: "Re-solve at this point" }).click();
    await page.waitForFunction((id) => /#\/optimizations\/.+/.test(window.location.hash) && !window.location.hash.includes(id), firstId);
    await page.getByRole("heading", { name: /Result|Optimization/ }).first().waitFor();
    await page.locator(".badge-finished, .badge-infeasible").first().waitFor({ timeout: 60_000 });
    await shot(page, "07-resolved");
  });

  await step("clone into the form", async () => {
    await page.goto(`${base}/#/optimizations/${firstId}`);
    await waitForResult(page);
    await page.getByRole("button", { name: "Clone into the form" }).click();
    await page.getByText("Cloned from an earlier request").waitFor();
    check((await page.getByLabel("Min GPUs").inputValue()) === "16", "the clone lost the workload's GPUs");
    await shot(page, "08-clone");
  });

  await step("policies: create, pause, resume", async () => {
    await page.goto(`${base}/#/policies`);
    const form = page.getByRole("form", { name: "new policy" });
    await form.getByLabel("Name", { exact: true }).fill("e2e hourly");
    await form.getByRole("button", { name: "Create policy" }).click();
    await page.getByRole("button", { name: "Pause" }).first().waitFor();
    await page.getByRole("button", { name: "Pause" }).first().click();
    await page.getByText("paused").first().waitFor();
    await shot(page, "09-policies-paused");
    await page.getByRole("button", { name: "Resume" }).first().click();
    await page.getByRole("button", { name: "Pause" }).first().waitFor();
  });

  await step("deploy to the Lambda fake and follow it", async () => {
    await page.goto(`${base}/#/optimize`);
    await page.getByLabel("Name").first().fill("e2e deploy");
    await page.getByLabel("Min GPUs").fill("8");
    await page.getByLabel("GPUs per node").fill("8");
    await page.getByLabel("GPU models").fill(historyGpu);
    await page.getByLabel("Allowed providers").fill("lambda");
    await page.getByLabel("Include spot offers").uncheck();
    await page.getByLabel("Max price age (hours)").fill("24");
    await page.getByRole("button", { name: "Optimize" }).click();
    await page.waitForFunction(() => /#\/optimizations\/.+/.test(window.location.hash));
    await waitForResult(page);
    page.once("dialog", (d) => void d.accept());
    await page.getByRole("button", { name: "Deploy" }).click();
    await page.waitForFunction(() => /#\/deployments\/.+/.test(window.location.hash));
    await page.getByRole("table", { name: "instances" }).locator(".badge-running").first().waitFor({ timeout: 60_000 });
    await shot(page, "10-deployment-running");
    // Lambda cannot stop an instance, only destroy it: Stop is off, and the page says why.
    await page.getByText(/Stop and start unavailable: lambda instances cannot be stopped/).waitFor();
    check(await page.getByRole("button", { name: "Stop", exact: true }).isDisabled(), "Stop is enabled for a Lambda deployment");
    page.once("dialog", (d) => void d.accept());
    await page.getByRole("button", { name: "Done: tear down" }).click();
    await page.getByRole("table", { name: "instances" }).locator(".badge-terminated").first().waitFor({ timeout: 60_000 });
    await shot(page, "10-deployment-done");
  });

  await step("deployments and nodes pages", async () => {
    const pages = [
      ["/deployments", "Deployments", "10-deployments", "table"],
      ["/spend", "Spend", "11-spend", "[aria-label='spend over the month']"],
      ["/nodes", "Local nodes", "12-nodes", "[aria-label='placement queue']"],
    ];
    for (const [path, heading, name, ready] of pages) {
      await page.goto(`${base}/#${path}`);
      await page.getByRole("heading", { name: heading, exact: true }).waitFor({ timeout: 10_000 });
      await page.locator(ready).first().waitFor({ timeout: 10_000 });
      await page.waitForLoadState("networkidle");
      if ((await page.locator(".error").count()) > 0) check(false, `${heading}: ${await page.locator(".error").first().textContent()}`);
      await shot(page, name);
    }
  });

  await step("phone width (390 px)", async () => {
    const phone = await browser.newContext({ viewport: { width: PHONE, height: 844 }, isMobile: true, hasTouch: true });
    const p = await phone.newPage();
    current = p;
    watch(p);
    await signIn(p);
    await p.locator("table.data tbody tr").first().waitFor();
    await noSideways(p, "offers");
    await shot(p, "20-phone-offers");
    await p.goto(`${base}/#/optimizations/${firstId}`);
    await waitForResult(p);
    await noSideways(p, "result");
    await shot(p, "21-phone-result");
    await p.goto(`${base}/#/prices?gpu=${encodeURIComponent(historyGpu)}&days=7`);
    await p.locator(".recharts-line").first().waitFor();
    await noSideways(p, "prices");
    await shot(p, "22-phone-prices");
    await p.goto(`${base}/#/forecasts`);
    await p.getByRole("img", { name: /^forecast fan of price:/ }).first().locator("path.recharts-area-area").first().waitFor();
    await p.getByRole("note", { name: "skill over last value" }).first().waitFor();
    await noSideways(p, "forecasts");
    await shot(p, "23-phone-forecasts");
    await phone.close();
  });

  check(errors.length === 0, `errors during the walk: ${errors.join(" | ")}`);
  process.stdout.write(`${JSON.stringify({ ok: true, screenshots: shots, seconds: timings })}\n`);
} catch (err) {
  if (current) await current.screenshot({ path: join(shots, "failure.png"), fullPage: true }).catch(() => undefined);
  process.stderr.write(`e2e failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.stdout.write(`${JSON.stringify({ ok: false, error: String(err), seconds: timings })}\n`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
