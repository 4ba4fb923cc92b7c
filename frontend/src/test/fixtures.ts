/** Optimization payloads shaped like the API's (a finished, an infeasible and a failed run). */
import type { Allocation, Optimization } from "../api/types";

const base: Optimization = {
  id: "opt1",
  name: "demo",
  status: "finished",
  job_id: "j1",
  policy_id: null,
  created_at: "2026-01-01T10:00:00Z",
  updated_at: "2026-01-01T10:00:05Z",
  request: { workloads: [{ id: "train", gpus_min: 16 }] },
  result: null,
  error: null,
};

export const finished: Optimization = {
  ...base,
  result: {
    status: "optimal",
    totals: { cost_per_hour: 31.5, cost_over_horizon: 31.5, gpus: 16, performance_score: 19.2 },
    risk: { expected_interruptions_per_hour: 0.08, expected_interruption_cost_per_hour: 0.4, cvar_cost_per_hour: 33.1, largest_provider_share: 0.5 },
    savings: [
      { baseline: "single_provider_on_demand", baseline_cost_per_hour: 45, savings_per_hour: 13.5, savings_pct: 30 },
      { baseline: "greedy_cheapest", baseline_cost_per_hour: 33, savings_per_hour: 1.5, savings_pct: 4.545 },
    ],
    binding_constraints: [{ name: "max_provider_share", shadow_price: 0.75, description: "no provider above 50%" }],
    stats: { backend: "ortools", status: "optimal", objective: 31.5, best_bound: 31.5, gap: 0, build_seconds: 0.02, solve_seconds: 0.31, variables: 412, constraints: 57, engine: "glop+scip" },
    infeasibility_reason: null,
    cost_per_hour: 31.5,
    offers_considered: 503,
    prices_as_of: "2026-01-01T09:00:00Z",
  },
};

export const allocations: Allocation[] = [
  { workload_id: "train", offer_key: "a", provider: "lambda", region: "us-east-1", instance_type: "gpu_8x_a100", gpu_model: "A100 80GB SXM", instances: 1, gpus: 8, hourly_cost: 14.32, spot: false },
  { workload_id: "train", offer_key: "b", provider: "gcp", region: "us-central1", instance_type: "a2-ultragpu-8g", gpu_model: "A100 80GB SXM", instances: 1, gpus: 8, hourly_cost: 17.18, spot: true },
];

export const infeasible: Optimization = {
  ...base,
  status: "infeasible",
  result: {
    status: "infeasible",
    totals: null,
    savings: [],
    stats: { backend: "ortools", status: "infeasible", objective: null, best_bound: null, gap: null, build_seconds: 0.01, solve_seconds: 0.02, variables: 10, constraints: 4 },
    infeasibility_reason: "workload train needs 16 GPUs but only 8 fit under the budget of $20.00/h",
    cost_per_hour: null,
    offers_considered: 12,
  },
};

export const failed: Optimization = { ...base, status: "failed", result: null, error: "RuntimeError: the solver found no solution within its time limit" };
