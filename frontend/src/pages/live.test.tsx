import { act, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { beforeEach, describe, expect, it } from "vitest";
import { json, renderWith } from "../test/fakeApi";
import { FakeSocket, status } from "../test/fakeSocket";
import { ForecastsPage } from "./ForecastsPage";
import { PricesPage } from "./PricesPage";

const HOUR = 3600_000;

function history(end: number) {
  const t = (h: number) => new Date(end - h * HOUR).toISOString();
  return {
    bucket: "hour", start: t(168), end: new Date(end).toISOString(),
    series: [{
      offer_key: "east", provider: "lambda", region: "us-east-1", instance_type: "gpu_8x_h100_sxm5", gpu_model: "H100 SXM",
      gpu_count: 8, spot: false,
      points: [2, 1].map((h) => ({ t: t(h), open: 20.72, high: 20.72, low: 20.72, close: 20.72, ticks: 1 })),
    }],
  };
}

function provider(lastSuccess: string | null) {
  return {
    provider: "lambda", scheduled: false, state: lastSuccess ? "ok" : "disabled", credentials: "configured", interval_s: 30,
    max_age_s: 90, last_attempt_at: lastSuccess, last_success_at: lastSuccess, last_error_at: null, last_error: null,
    last_duration_s: 0.1, consecutive_failures: 0, next_run_at: null, offers_count: 5, current_offers: 12,
    newest_observed_at: lastSuccess ?? new Date(Date.now() - 2 * HOUR).toISOString(), lag_s: 1,
  };
}

function change(id: number, offerKey: string) {
  return { id, type: "price", offer_key: offerKey, provider: "lambda", region: "us-east-1", gpu_model: "H100 SXM",
    old_price_per_hour: 20.72, new_price_per_hour: 23.92, change_pct: 15.44, observed_at: new Date().toISOString() };
}

describe("live prices on the prices page", () => {
  beforeEach(() => FakeSocket.reset());

  it("moves the chart's last point and re-reads provider freshness on a /ws/prices change, without reloading", async () => {
    window.location.hash = "#/prices?gpu=H100+SXM&days=7";
    let refreshed: string | null = null;
    const { requests } = renderWith(<PricesPage />, (_req, url) => {
      if (url.pathname.endsWith("/prices/history")) return json(history(Date.now()));
      if (url.pathname.endsWith("/gpus")) return json({ items: [{ name: "H100 SXM" }], newest_price_at: new Date().toISOString(), stale_prices: null });
      if (url.pathname.endsWith("/providers")) return json([provider(refreshed)]);
      return json([]);
    });
    const latest = await screen.findByRole("table", { name: "latest prices" });
    expect(within(latest).getByText("lambda us-east-1 on-demand").closest("tr")?.textContent).toContain("$2.59");
    const freshness = await screen.findByRole("table", { name: "provider freshness" });
    expect(within(freshness).getAllByRole("row")[1]?.textContent).toContain("—");
    const historyAsks = requests.filter((r) => r.url.includes("/prices/history")).length;

    await waitFor(() => expect(FakeSocket.instances.length).toBe(1));
    refreshed = new Date().toISOString();
    act(() => {
      FakeSocket.last().open();
      FakeSocket.last().send(change(41, "east"));
    });
    await waitFor(() => expect(within(screen.getByRole("table", { name: "latest prices" })).getByText("$2.99")).toBeTruthy());
    await waitFor(() => expect(within(screen.getByRole("table", { name: "provider freshness" })).getAllByRole("row")[1]?.textContent)
      .toContain("fresh"), { timeout: 3000 });
    expect(screen.getByRole("list", { name: "live price changes" }).textContent).toContain("$20.72 → $23.92");
    expect(requests.filter((r) => r.url.includes("/prices/history")).length).toBe(historyAsks);
    expect(FakeSocket.instances.length).toBe(1);
  });

  it("keeps the loaded history when a change arrives before it, or for an offer the chart does not show", async () => {
    window.location.hash = "#/prices?gpu=H100+SXM&days=7";
    let answer: (r: Response) => void = () => undefined;
    const pending = new Promise<Response>((resolve) => (answer = resolve));
    renderWith(<PricesPage />, (_req, url) => {
      if (url.pathname.endsWith("/prices/history")) return pending;
      if (url.pathname.endsWith("/gpus")) return json({ items: [{ name: "H100 SXM" }], newest_price_at: new Date().toISOString(), stale_prices: null });
      if (url.pathname.endsWith("/providers")) return json([]);
      return json([]);
    });
    await waitFor(() => expect(FakeSocket.instances.length).toBe(1));
    act(() => {
      FakeSocket.last().open();
      FakeSocket.last().send(change(1, "east"));
      FakeSocket.last().send(change(2, "elsewhere"));
    });
    await act(async () => answer(json(history(Date.now()))));
    await screen.findByRole("table", { name: "latest prices" });
    expect(screen.getByText(/1 offers/).textContent).toContain("1 offers");
  });
});

const ORIGIN = Date.parse("2026-01-01T00:00:00Z");
const STAMPS = [0, 1, 2].map((h) => new Date(ORIGIN + h * HOUR).toISOString());
const FORECAST = {
  series_key: "price:east", kind: "price", offer_key: "east", workload_id: null, provider: "lambda", region: "us-east-1",
  gpu_model: "H100 SXM", spot: false, created_at: STAMPS[0], origin: STAMPS[0], step: "h", horizon: 3, model: "last_value",
  fallback: true, fallback_reason: "no skill over last value: best try lag_ridge at step 2 won 4, lost 1 of 5 origins",
  last_observed: 20.72, timestamps: STAMPS, point: [20.72, 20.72, 20.72],
  quantiles: { "0.1": [20, 19.5, 19], "0.5": [20.72, 20.72, 20.72], "0.9": [21.5, 22, 22.5] }, scenarios: null,
  backtest: { selected: "last_value", mase: 0.82, smape: 1.497, coverage: 0.508, n_origins: 5 },
  skill: { has_skill: false, reason: "no skill over last value: best try lag_ridge at step 2 won 4, lost 1 of 5 origins",
    rule: "a model must win at most origins", n_origins: 5, backtest_coverage: 0.81, interval_scale: 1.5,
    steps: [1, 2, 3].map((step) => ({ step, served: "last_value", candidate: "lag_ridge", wins: 4, losses: 1, p_value: 0.19,
      candidate_mae: 0.1, last_value_mae: 0.2 })) },
};

describe("forecasts page", () => {
  beforeEach(() => FakeSocket.reset());

  it("builds forecasts on demand: queues the job, follows it, and lists what it stored", async () => {
    window.location.hash = "#/forecasts";
    let stored: unknown[] = [];
    const { requests } = renderWith(<ForecastsPage />, (req, url) => {
      if (url.pathname.endsWith("/forecasts/refresh") && req.method === "POST") {
        return json({ job_id: "j1", status: "queued", kind: "price", full_refit: false, websocket_url: "ws://x/ws/jobs/j1", status_url: "/jobs/j1" }, 202);
      }
      if (url.pathname.endsWith("/forecasts")) return json({ items: stored, total: stored.length, limit: 12, offset: 0 });
      return json({ items: [], newest_price_at: null, stale_prices: null });
    });
    await screen.findByText(/No stored forecasts match/);
    fireEvent.click(screen.getByRole("button", { name: "Build price forecasts now" }));
    await waitFor(() => expect(FakeSocket.instances.length).toBe(1));
    const post = requests.find((r) => r.method === "POST")!;
    expect(await post.json()).toEqual({ kind: "price", full_refit: false });
    expect(new URL(FakeSocket.last().url).pathname).toBe("/api/ws/jobs/j1");
    expect((screen.getByRole("button", { name: "Building forecasts…" }) as HTMLButtonElement).disabled).toBe(true);
    stored = [{ ...FORECAST, series_key: "price:new" }];
    act(() => {
      FakeSocket.last().open();
      FakeSocket.last().send(status(1, "finished", true));
    });
    await screen.findByRole("img", { name: "forecast fan of price:new" });
    expect(screen.getByRole("status", { name: "forecast job" }).textContent).toContain("finished");
  });

  it("shows each fan chart with its skill statement and backtest figures (sMAPE is already a percentage)", async () => {
    window.location.hash = "#/forecasts";
    renderWith(<ForecastsPage />, (_req, url) => {
      if (url.pathname.endsWith("/forecasts")) return json({ items: [FORECAST], total: 1, limit: 12, offset: 0 });
      return json({ items: [], newest_price_at: null, stale_prices: null });
    });
    const note = await screen.findByRole("note", { name: "skill over last value" });
    expect(note.textContent).toContain("No skill over last value: last value is served at every step.");
    expect(note.textContent).toContain("Best try lag_ridge at step 2 won 4, lost 1 of 5 origins.");
    expect(screen.getByRole("img", { name: "forecast fan of price:east" })).toBeTruthy();
    const figures = screen.getByLabelText("backtest figures");
    expect(figures.textContent).toContain("1.5%");
    expect(figures.textContent).not.toContain("149.7%");
    expect(figures.textContent).toContain("81.0% (widened ×1.5)");
  });
});
