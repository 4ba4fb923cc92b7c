/**
 * The optimize form's state (all text, as typed) and its translation into an ``OptimizeRequest``.
 *
 * Checks mirror the server's constraints so most mistakes show next to their field before a round
 * trip; the server still validates everything and its 422 message is shown as well.
 */
import type { OptimizeRequest, Workload } from "../api/types";
import { csv } from "../format";

export type WorkloadType = NonNullable<Workload["workload_type"]>;
export type ObjectiveKind = NonNullable<OptimizeRequest["objective"]>;

export interface WorkloadForm {
  id: string;
  workloadType: WorkloadType;
  gpusMin: string;
  gpusMax: string;
  gpusPerNode: string;
  minVramGb: string;
  allowedGpuModels: string;
  allowedProviders: string;
  deniedProviders: string;
  spotTolerant: boolean;
  priority: string;
}

export interface OptimizeForm {
  name: string;
  objective: ObjectiveKind;
  weightCost: string;
  weightPerformance: string;
  weightRisk: string;
  budgetPerHour: string;
  maxProviderShare: string;
  maxRegionShare: string;
  maxSpotShare: string;
  inferenceOnDemandFloor: string;
  /** Least share of a spot offer's launches that get capacity (0–1); empty = no floor. */
  minLaunchSuccess: string;
  riskTolerance: string;
  horizonHours: string;
  providers: string;
  regions: string;
  includeSpot: boolean;
  maxPriceAgeHours: string;
  timeLimitS: string;
  backend: "ortools" | "pulp";
  /** Points per Pareto front (each its own solve); empty = none. */
  paretoPoints: string;
  workloads: WorkloadForm[];
}

export function newWorkload(index: number): WorkloadForm {
  return {
    id: `workload-${index}`,
    workloadType: "training",
    gpusMin: "8",
    gpusMax: "",
    gpusPerNode: "1",
    minVramGb: "",
    allowedGpuModels: "",
    allowedProviders: "",
    deniedProviders: "",
    spotTolerant: false,
    priority: "1",
  };
}

export function defaultForm(): OptimizeForm {
  return {
    name: "",
    objective: "cost",
    weightCost: "1",
    weightPerformance: "0",
    weightRisk: "0",
    budgetPerHour: "",
    maxProviderShare: "",
    maxRegionShare: "",
    maxSpotShare: "",
    inferenceOnDemandFloor: "",
    minLaunchSuccess: "",
    riskTolerance: "0.5",
    horizonHours: "1",
    providers: "",
    regions: "",
    includeSpot: true,
    maxPriceAgeHours: "",
    timeLimitS: "",
    backend: "ortools",
    paretoPoints: "",
    workloads: [newWorkload(1)],
  };
}

export type FormErrors = Record<string, string>;
export type BuildResult = { ok: true; body: OptimizeRequest } | { ok: false; errors: FormErrors };

interface Range {
  min?: number;
  max?: number;
  /** The minimum itself is not allowed (``gt`` rather than ``ge``). */
  exclusiveMin?: boolean;
  integer?: boolean;
}

/** Parse an optional number; record an error under ``key`` when it is present but out of range. */
function number(text: string, key: string, range: Range, errors: FormErrors): number | undefined {
  const trimmed = text.trim();
  if (trimmed === "") return undefined;
  const value = Number(trimmed);
  if (!Number.isFinite(value)) {
    errors[key] = "not a number";
    return undefined;
  }
  if (range.integer && !Number.isInteger(value)) errors[key] = "must be a whole number";
  else if (range.min !== undefined && (range.exclusiveMin ? value <= range.min : value < range.min))
    errors[key] = range.exclusiveMin ? `must be more than ${range.min}` : `must be at least ${range.min}`;
  else if (range.max !== undefined && value > range.max) errors[key] = `must be at most ${range.max}`;
  return value;
}

function required(value: number | undefined, key: string, errors: FormErrors): void {
  if (value === undefined && !errors[key]) errors[key] = "required";
}

function buildWorkload(w: WorkloadForm, i: number, errors: FormErrors): Workload {
  const at = (field: string) => `workloads.${i}.${field}`;
  const id = w.id.trim();
  if (!id) errors[at("id")] = "required";
  const gpusMin = number(w.gpusMin, at("gpusMin"), { min: 1, max: 100_000, integer: true }, errors);
  required(gpusMin, at("gpusMin"), errors);
  const gpusMax = number(w.gpusMax, at("gpusMax"), { min: 1, max: 100_000, integer: true }, errors);
  if (gpusMax !== undefined && gpusMin !== undefined && gpusMax < gpusMin) errors[at("gpusMax")] = "must be ≥ min GPUs";
  const perNode = number(w.gpusPerNode, at("gpusPerNode"), { min: 1, max: 64, integer: true }, errors);
  const minVram = number(w.minVramGb, at("minVramGb"), { min: 0 }, errors);
  const priority = number(w.priority, at("priority"), { min: 1, max: 10, integer: true }, errors);

  const workload: Workload = { id, gpus_min: gpusMin ?? 1, workload_type: w.workloadType, spot_tolerant: w.spotTolerant };
  if (gpusMax !== undefined) workload.gpus_max = gpusMax;
  if (perNode !== undefined) workload.gpus_per_node = perNode;
  if (minVram !== undefined) workload.min_vram_gb = minVram;
  if (priority !== undefined) workload.priority = priority;
  const models = csv(w.allowedGpuModels);
  if (models.length) workload.allowed_gpu_models = models;
  const allowed = csv(w.allowedProviders).map((p) => p.toLowerCase());
  if (allowed.length) workload.allowed_providers = allowed;
  const denied = csv(w.deniedProviders).map((p) => p.toLowerCase());
  if (denied.length) workload.denied_providers = denied;
  return workload;
}

export function buildRequest(form: OptimizeForm): BuildResult {
  const errors: FormErrors = {};
  if (form.workloads.length === 0) errors.workloads = "add at least one workload";
  const workloads = form.workloads.map((w, i) => buildWorkload(w, i, errors));
  const seen = new Set<string>();
  workloads.forEach((w, i) => {
    if (w.id && seen.has(w.id)) errors[`workloads.${i}.id`] = "workload ids must be unique";
    seen.add(w.id);
  });

  const body: OptimizeRequest = { workloads, objective: form.objective, backend: form.backend };
  if (form.name.trim()) body.name = form.name.trim();
  if (form.objective === "weighted") {
    const cost = number(form.weightCost, "weightCost", { min: 0 }, errors);
    const performance = number(form.weightPerformance, "weightPerformance", { min: 0 }, errors);
    const risk = number(form.weightRisk, "weightRisk", { min: 0 }, errors);
    body.weights = { cost: cost ?? 0, performance: performance ?? 0, risk: risk ?? 0 };
  }

  const constraints: NonNullable<OptimizeRequest["constraints"]> = {};
  const budget = number(form.budgetPerHour, "budgetPerHour", { min: 0, max: 1e7 }, errors);
  if (budget !== undefined) constraints.budget_per_hour = budget;
  const provShare = number(form.maxProviderShare, "maxProviderShare", { min: 0, exclusiveMin: true, max: 1 }, errors);
  if (provShare !== undefined) constraints.max_provider_share = provShare;
  const regionShare = number(form.maxRegionShare, "maxRegionShare", { min: 0, exclusiveMin: true, max: 1 }, errors);
  if (regionShare !== undefined) constraints.max_region_share = regionShare;
  const spotShare = number(form.maxSpotShare, "maxSpotShare", { min: 0, max: 1 }, errors);
  if (spotShare !== undefined) constraints.max_spot_share = spotShare;
  const floor = number(form.inferenceOnDemandFloor, "inferenceOnDemandFloor", { min: 0, max: 1 }, errors);
  if (floor !== undefined) constraints.inference_on_demand_floor = floor;
  const launch = number(form.minLaunchSuccess, "minLaunchSuccess", { min: 0, max: 1 }, errors);
  if (launch !== undefined) constraints.min_launch_success_probability = launch;
  if (Object.keys(constraints).length) body.constraints = constraints;

  const risk = number(form.riskTolerance, "riskTolerance", { min: 0, max: 1 }, errors);
  if (risk !== undefined) body.risk_tolerance = risk;
  const horizon = number(form.horizonHours, "horizonHours", { min: 0, exclusiveMin: true, max: 24 * 366 }, errors);
  if (horizon !== undefined) body.horizon_hours = horizon;
  const limit = number(form.timeLimitS, "timeLimitS", { min: 0, exclusiveMin: true, max: 600 }, errors);
  if (limit !== undefined) body.time_limit_s = limit;
  const pareto = number(form.paretoPoints, "paretoPoints", { min: 0, max: 50, integer: true }, errors);
  if (pareto !== undefined && pareto > 0) body.pareto_points = pareto;

  const scope: NonNullable<OptimizeRequest["offers"]> = {};
  const providers = csv(form.providers).map((p) => p.toLowerCase());
  if (providers.length) scope.providers = providers;
  const regions = csv(form.regions);
  if (regions.length) scope.regions = regions;
  if (!form.includeSpot) scope.include_spot = false;
  const maxAgeH = number(form.maxPriceAgeHours, "maxPriceAgeHours", { min: 0, exclusiveMin: true }, errors);
  if (maxAgeH !== undefined) scope.max_age_s = Math.max(1, Math.round(maxAgeH * 3600));
  if (Object.keys(scope).length) body.offers = scope;

  return Object.keys(errors).length ? { ok: false, errors } : { ok: true, body };
}
