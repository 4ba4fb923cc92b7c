import { act, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { beforeEach, describe, expect, it } from "vitest";
import type { Policy } from "../api/types";
import { freshness } from "../components/ProviderFreshness";
import { json, renderWith } from "../test/fakeApi";
import { FakeSocket } from "../test/fakeSocket";
import { PoliciesPage, runRows } from "./PoliciesPage";
import { PricesPage, windowEnd } from "./PricesPage";

const policy: Policy = {
  id: "p1", name: "hourly", request: { workloads: [{ id: "train", gpus_min: 8 }] }, cron: null, interval_s: 3600,
  keep_threshold_pct: 5, enabled: true, next_run_at: "2026-01-01T11:00:00Z", current_optimization_id: null, created_at: "2026-01-01T10:00:00Z",
};

describe("PoliciesPage", () => {
  it("pauses and resumes a policy with PATCH, and edits its schedule", async () => {
    let current = { ...policy };
    const { requests } = renderWith(<PoliciesPage />, async (req) => {
      if (req.method === "PATCH") {
        current = { ...current, ...((await req.json()) as Partial<Policy>) };
        return json(current);
      }
      return json([current]);
    });
    fireEvent.click(await screen.findByRole("button", { name: "Pause" }));
    await screen.findByText("paused");
    fireEvent.click(screen.getByRole("button", { name: "Resume" }));
    await screen.findByRole("button", { name: "Pause" });
    const patches = requests.filter((r) => r.method === "PATCH");
    expect(await Promise.all(patches.map((r) => r.json()))).toEqual([{ enabled: false }, { enabled: true }]);
    expect(new URL(patches[0]!.url).pathname).toBe("/api/policies/p1");

    fireEvent.click(screen.getByRole("button", { name: "Edit" }));
    const form = screen.getByRole("form", { name: "edit hourly" });
    fireEvent.change(within(form).getByDisplayValue("3600"), { target: { value: "900" } });
    fireEvent.click(within(form).getByRole("button", { name: "Save" }));
    await waitFor(() => expect(requests.filter((r) => r.method === "PATCH")).toHaveLength(3));
    const edit = (await requests.filter((r) => r.method === "PATCH")[2]!.json()) as Record<string, unknown>;
    expect([edit.interval_s, edit.name, edit.keep_threshold_pct]).toEqual([900, "hourly", 5]);
  });

  it("orders run history for the savings chart", () => {
    const rows = runRows([
      { id: "b", optimization_id: "o2", decision: "adopt", current_cost_per_hour: 10, new_cost_per_hour: 8, savings_pct: 20, created_at: "2026-01-02T00:00:00Z" },
      { id: "a", optimization_id: "o1", decision: "adopt", current_cost_per_hour: null, new_cost_per_hour: 10, savings_pct: null, created_at: "2026-01-01T00:00:00Z" },
    ]);
    expect(rows).toEqual([
      { t: Date.parse("2026-01-01T00:00:00Z"), proposed: 10 },
      { t: Date.parse("2026-01-02T00:00:00Z"), current: 10, proposed: 8, savings: 20 },
    ]);
  });
});

describe("PricesPage", () => {
  beforeEach(() => FakeSocket.reset());

  it("reads the GPU from the URL, asks for its history and shows live changes from /ws/prices", async () => {
    window.location.hash = "#/prices?gpu=H100+SXM&market=spot&days=7";
    const { requests } = renderWith(<PricesPage />, (_req, url) => {
      if (url.pathname.endsWith("/prices/history")) {
        return json({ bucket: "hour", start: "2026-01-01T00:00:00Z", end: "2026-01-08T00:00:00Z", series: [] });
      }
      if (url.pathname.endsWith("/gpus")) return json({ items: [{ name: "H100 SXM" }], newest_price_at: null, stale_prices: null });
      return json([]);
    });
    await waitFor(() => expect(requests.some((r) => r.url.includes("/prices/history"))).toBe(true));
    const q = new URL(requests.find((r) => r.url.includes("/prices/history"))!.url).searchParams;
    expect([q.get("gpu_model"), q.get("spot"), q.get("bucket")]).toEqual(["H100 SXM", "true", "hour"]);

    await waitFor(() => expect(FakeSocket.instances.length).toBe(1));
    const socket = FakeSocket.last();
    expect(new URL(socket.url).pathname).toBe("/api/ws/prices");
    expect(new URL(socket.url).searchParams.get("gpu_model")).toBe("H100 SXM");
    expect(socket.protocols).toEqual(["cloudarb.bearer", "ca_test"]);
    act(() => {
      socket.open();
      socket.send({ id: 7, type: "price", offer_key: "k", provider: "aws", region: "us-east-1", gpu_model: "H100 SXM",
        old_price_per_hour: 10, new_price_per_hour: 8, change_pct: -20, observed_at: new Date().toISOString() });
      socket.send({ id: 7, type: "price", offer_key: "k", provider: "aws", region: "us-east-1", gpu_model: "H100 SXM",
        old_price_per_hour: 10, new_price_per_hour: 8, change_pct: -20, observed_at: new Date().toISOString() });
    });
    const feed = await screen.findByRole("list", { name: "live price changes" });
    expect(within(feed).getAllByRole("listitem")).toHaveLength(1);
    expect(feed.textContent).toContain("-20.0%");
  });
});

describe("price window", () => {
  it("ends now while prices are recent, and just after the newest price when it is older than the window", () => {
    const now = Date.parse("2026-06-01T00:00:00Z");
    expect(windowEnd(now, "2026-05-31T12:00:00Z", 7)).toBe(now);
    expect(windowEnd(now, null, 7)).toBe(now);
    expect(windowEnd(now, "2026-01-01T00:00:00Z", 7)).toBe(Date.parse("2026-01-01T01:00:00Z"));
  });
});

describe("provider freshness", () => {
  const base = { provider: "aws", consecutive_failures: 0, last_error: null, newest_observed_at: "2026-01-01T00:00:00Z", max_age_s: 3600 };
  it("tells fresh, stale, failing and empty providers apart", () => {
    const now = Date.parse("2026-01-01T00:30:00Z");
    expect(freshness(base as never, now)).toBe("fresh");
    expect(freshness(base as never, now + 3600_000)).toBe("stale");
    expect(freshness({ ...base, consecutive_failures: 2, last_error: "timeout" } as never, now)).toBe("failing");
    expect(freshness({ ...base, newest_observed_at: null } as never, now)).toBe("none");
  });
});
