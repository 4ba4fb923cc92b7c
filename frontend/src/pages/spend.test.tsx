import { screen, waitFor } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { json, renderWith } from "../test/fakeApi";
import { SpendPage } from "./SpendPage";

const summary = {
  month: "2026-12", month_to_date: 42, today: 5, running_per_hour: 2.5, committed_to_expiry: 10, live_instances: 1,
  leaked_instances: 0, last_7_days: 30, budget: { monthly_limit: 1000, thresholds: [0.8], hard_stop: false, used_share: 0.042, remaining: 948 },
};

describe("SpendPage", () => {
  it("shows the month against the budget, asking /costs per UTC day, and the breakdown", async () => {
    const { requests } = renderWith(<SpendPage />, (_req, url) => {
      if (url.pathname.endsWith("/costs/summary")) return json(summary);
      if (url.pathname.endsWith("/alerts")) return json([{ id: 1, kind: "budget", message: "80% of the monthly budget", details: {}, created_at: "2026-12-05T00:00:00Z" }]);
      if (url.searchParams.get("by") === "org") return json({ by: "org", items: [], total: 1.5 });
      return json({ by: "provider", items: [{ key: "lambda", amount: 40, billed_hours: 3, instances: 2 }], total: 40 });
    });
    await screen.findByRole("img", { name: "spend over the month" });
    expect(screen.getByText("Budget used of $1,000.00").nextElementSibling?.textContent).toBe("4.2%");
    expect(screen.getByText(/80% of the monthly budget/)).toBeTruthy();
    await waitFor(() => expect(requests.filter((r) => new URL(r.url).searchParams.get("by") === "org").length).toBeGreaterThan(0));
    const day = new URL(requests.find((r) => new URL(r.url).searchParams.get("by") === "org")!.url).searchParams;
    expect(day.get("since")).toMatch(/T00:00:00.000Z$/);
    expect(Date.parse(day.get("until")!) - Date.parse(day.get("since")!)).toBe(86400_000);
  });
});
