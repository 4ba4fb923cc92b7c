import { fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { Optimization, OptimizeRequest } from "../api/types";
import { formFromRequest, resolveAt } from "../pages/requestOps";
import { buildRequest } from "../pages/optimizeForm";
import { json, renderWith } from "../test/fakeApi";
import { allocations, finished } from "../test/fixtures";
import { parseName, plainWords } from "./bindingWords";
import { allocationBy, savingsBars, type FrontPoint } from "./ResultCharts";
import { ResultView } from "./ResultView";

const point = (cost: number, risk: number, perf: number): FrontPoint => ({
  cost_per_hour: cost, risk_per_hour: risk, performance: perf, expected_interruption_cost_per_hour: risk, cvar_cost_per_hour: cost, gap: 0,
});

describe("binding constraints in plain words", () => {
  it("parses the optimizer's row names", () => {
    expect(parseName("demand[train]@t2")).toEqual({ kind: "demand", key: "train", period: 2 });
    expect(parseName("budget")).toEqual({ kind: "budget", key: "", period: null });
  });

  it("says what limits the result and what relaxing it is worth, without solver jargon", () => {
    const cut = plainWords({ name: "cut[train]", shadow_price: 1.25, description: "whole-instance form of workload train's demand (a valid inequality of the tightened model)" });
    expect(cut).toBe("Workload “train” is bought in whole instances: rounding to whole machines costs (part of what one more GPU of its demand costs) $1.25/hour.");
    expect(cut).not.toMatch(/inequality|tightened/);
    expect(plainWords({ name: "provider[aws]", shadow_price: -0.5 })).toBe(
      "The cap on the share at provider aws is reached: loosening it by one GPU's share would save $0.5000/hour.");
    expect(plainWords({ name: "demand[serve]@t1", shadow_price: 2 }, "performance")).toContain("in period 2");
    expect(plainWords({ name: "mystery", shadow_price: 3, description: "something else" })).toBe("something else: relaxing it is worth $3.00/hour.");
  });
});

describe("result charts' data", () => {
  it("compares the result with every feasible baseline", () => {
    const bars = savingsBars(finished.result as never);
    expect(bars.map((b) => [b.name, b.cost, b.saved])).toEqual([
      ["CloudArb", 31.5, null],
      ["Cheapest single provider, on-demand", 45, 30],
      ["Greedy cheapest-first", 33, 4.545],
    ]);
  });

  it("sums the allocation by provider, region and GPU model", () => {
    expect(allocationBy(allocations, "provider")).toEqual([{ name: "gcp", cost: 17.18, gpus: 8 }, { name: "lambda", cost: 14.32, gpus: 8 }]);
    expect(allocationBy(allocations, "gpu_model")).toEqual([{ name: "A100 80GB SXM", cost: 31.5, gpus: 16 }]);
    expect(allocationBy(allocations, "region").map((r) => r.name)).toEqual(["gcp us-central1", "lambda us-east-1"]);
  });
});

describe("request operations", () => {
  const request: OptimizeRequest = {
    name: "fleet", objective: "cost", pareto_points: 5, constraints: { max_spot_share: 0.5, min_launch_success_probability: 0.7 },
    workloads: [{ id: "train", gpus_min: 16, gpus_per_node: 8, allowed_gpu_models: ["H100 SXM"], spot_tolerant: true, workload_type: "training" }],
    offers: { providers: ["aws", "gcp"], max_age_s: 7200 },
  };

  it("re-solves at a Pareto point: cost capped there, the other criterion optimized", () => {
    const risk = resolveAt(request, "cost_risk", point(30.123, 2, 10));
    expect(risk.constraints).toEqual({ max_spot_share: 0.5, min_launch_success_probability: 0.7, budget_per_hour: 30.14 });
    expect([risk.objective, risk.weights?.risk, risk.pareto_points]).toEqual(["weighted", 1, null]);
    const perf = resolveAt(request, "cost_performance", point(40, 2, 10));
    expect([perf.objective, perf.constraints?.budget_per_hour]).toEqual(["performance", 40.01]);
  });

  it("clones a stored request into the form and back without loss", () => {
    const form = formFromRequest(request);
    expect([form.name, form.providers, form.maxPriceAgeHours, form.paretoPoints, form.minLaunchSuccess]).toEqual(["fleet (copy)", "aws, gcp", "2", "5", "0.7"]);
    const built = buildRequest(form);
    expect(built.ok).toBe(true);
    if (!built.ok) return;
    expect(built.body.workloads[0]).toMatchObject({ id: "train", gpus_min: 16, gpus_per_node: 8, allowed_gpu_models: ["H100 SXM"], spot_tolerant: true });
    expect(built.body.offers).toEqual({ providers: ["aws", "gcp"], max_age_s: 7200 });
    expect(built.body.constraints).toEqual({ max_spot_share: 0.5, min_launch_success_probability: 0.7 });
    expect(built.body.pareto_points).toBe(5);
  });
});

describe("ResultView with Pareto fronts", () => {
  it("lets the user pick a point and asks to re-solve there", async () => {
    const withFronts: Optimization = {
      ...finished,
      result: { ...(finished.result as object), fronts: { cost_risk: [point(30, 3, 10), point(35, 1, 10)], cost_performance: [] } } as unknown as Optimization["result"],
    };
    const picked: unknown[] = [];
    render(<ResultView optimization={withFronts} allocations={allocations} onPick={(kind, p) => picked.push([kind, p.cost_per_hour])} />);
    const button = screen.getByRole("button", { name: "Re-solve at this point" }) as HTMLButtonElement;
    expect(button.disabled).toBe(true);
    fireEvent.change(screen.getByLabelText("Pareto point"), { target: { value: "1" } });
    await waitFor(() => expect(button.disabled).toBe(false));
    fireEvent.click(button);
    expect(picked).toEqual([["cost_risk", 35]]);
    expect(screen.getByRole("heading", { name: "What limits this result" })).toBeTruthy();
  });
});

describe("ResultActions", () => {
  it("re-runs the stored request with a fresh idempotency key", async () => {
    const { OptimizationDetailPage } = await import("../pages/OptimizationDetailPage");
    const { requests } = renderWith(<OptimizationDetailPage id="opt1" />, (req, url) => {
      if (req.method === "POST") return json({ id: "opt2", job_id: "j2", status: "queued", websocket_url: "/ws/jobs/j2", status_url: "/optimize/opt2" }, 202);
      if (url.pathname.endsWith("/allocations")) return json(allocations);
      return json(finished);
    });
    fireEvent.click(await screen.findByRole("button", { name: "Re-run" }));
    await waitFor(() => expect(window.location.hash).toBe("#/optimizations/opt2"));
    const post = requests.find((r) => r.method === "POST")!;
    expect(post.headers.get("Idempotency-Key")).toMatch(/^[0-9a-f-]{36}$/);
    expect(await post.json()).toEqual(finished.request);
    expect(within(screen.getByLabelText("result actions")).getByRole("button", { name: "Deploy" })).toBeTruthy();
  });
});
