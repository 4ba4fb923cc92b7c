/**
 * Names for the generated OpenAPI types (job events included), plus the one shape the OpenAPI
 * document cannot describe: the optimization result (stored as an open JSON object by the API).
 */
import type { components } from "./schema";

type Schemas = components["schemas"];

export type Offer = Schemas["OfferOut"];
export type OffersPage = Schemas["OfferPage"];
export type GpuList = Schemas["GpuList"];
export type Optimization = Schemas["OptimizationOut"];
export type OptimizationsPage = Schemas["Page_OptimizationOut_"];
export type Allocation = Schemas["AllocationOut"];
export type JobAccepted = Schemas["JobAccepted"];
export type JobStatus = Schemas["JobOut"]["status"];
export type OptimizeRequest = Schemas["OptimizeRequest"];
export type Workload = Schemas["Workload"];
export type Constraints = Schemas["Constraints"];
export type Policy = Schemas["PolicyOut"];
export type PolicyIn = Schemas["PolicyIn"];
export type PolicyPatch = Schemas["PolicyPatch"];
export type PolicyRun = Schemas["PolicyRunOut"];
export type Tokens = Schemas["TokensOut"];
export type Me = Schemas["MeOut"];

export const TERMINAL_STATUSES: readonly JobStatus[] = ["finished", "infeasible", "failed", "canceled"];

export function isActive(status: JobStatus): boolean {
  return status === "queued" || status === "running";
}

/** One comparison against a baseline fleet (optimizer.schemas.Savings). */
export interface Savings {
  baseline: string;
  baseline_cost_per_hour: number | null;
  savings_per_hour: number | null;
  savings_pct: number | null;
}

export interface Totals {
  cost_per_hour: number;
  cost_over_horizon: number;
  gpus: number;
  performance_score: number;
  egress_cost_per_hour?: number;
  migration_cost?: number;
}

export interface RiskMetrics {
  expected_interruptions_per_hour: number;
  expected_interruption_cost_per_hour: number;
  cvar_cost_per_hour: number | null;
  largest_provider_share: number;
  /** Expected cost of launches refused for lack of capacity (valued at the line's price); not money paid. */
  expected_launch_cost_per_hour?: number;
}

export interface SolverStats {
  backend: string;
  status: string;
  objective: number | null;
  best_bound: number | null;
  gap: number | null;
  build_seconds: number;
  solve_seconds: number;
  variables: number;
  constraints: number;
  sense?: "min" | "max";
  lp_bound?: number | null;
  presolve_offers_removed?: number;
  engine?: string;
  phases?: Record<string, number>;
}

export interface BindingConstraint {
  name: string;
  shadow_price: number;
  description?: string;
}

/**
 * The stored solution summary the API returns in ``OptimizationOut.result`` (optimizer.schemas.Solution
 * without its allocations, plus a few fields the application adds). Every field is optional here
 * because the API types the object as open JSON; the views check before they read.
 */
export interface OptimizationResult {
  status?: "optimal" | "feasible" | "infeasible" | "no_solution";
  totals?: Totals | null;
  risk?: RiskMetrics;
  savings?: Savings[];
  binding_constraints?: BindingConstraint[];
  stats?: SolverStats;
  infeasibility_reason?: string | null;
  cost_per_hour?: number | null;
  offers_considered?: number | null;
  prices_as_of?: string | null;
  policy_decision?: string;
  savings_vs_current_pct?: number | null;
}

export function resultOf(opt: Optimization): OptimizationResult | null {
  return (opt.result ?? null) as OptimizationResult | null;
}

/** A job's events, as the server's typed models (cloudarb.jobs.events), generated from OpenAPI. */
export type ProgressEvent = Schemas["ProgressEvent"];
export type StatusEvent = Schemas["StatusEvent"];
export type JobEvent = ProgressEvent | StatusEvent;
