/** What the result screen's buttons do to a stored request: re-solve at a Pareto point, clone into the form. */
import type { OptimizeRequest } from "../api/types";
import type { FrontKind, FrontPoint } from "../components/ResultCharts";
import { defaultForm, newWorkload, type OptimizeForm, type WorkloadForm } from "./optimizeForm";

/**
 * The request for one point of a front (the epsilon-constraint method the sweep used, turned
 * around): cap the cost at the point's (plus a cent of slack against rounding) and optimize the
 * other criterion under it: least risk for the cost/risk front, most performance for cost/performance.
 */
export function resolveAt(request: OptimizeRequest, kind: FrontKind, point: FrontPoint): OptimizeRequest {
  const budget = Math.ceil((point.cost_per_hour + 0.01) * 100) / 100;
  const base: OptimizeRequest = {
    ...request,
    name: `${request.name || "optimization"} @ $${budget.toFixed(2)}/h (${kind === "cost_risk" ? "least risk" : "most performance"})`,
    constraints: { ...(request.constraints ?? {}), budget_per_hour: budget },
    pareto_points: null,
  };
  if (kind === "cost_performance") return { ...base, objective: "performance" };
  return { ...base, objective: "weighted", weights: { cost: 0.001, performance: 0, risk: 1 } };
}

const str = (v: number | null | undefined): string => (v === null || v === undefined ? "" : String(v));
const list = (v: string[] | null | undefined): string => (v ?? []).join(", ");

/** The optimize form filled from a stored request (the inverse of ``buildRequest`` for what the form has). */
export function formFromRequest(req: OptimizeRequest): OptimizeForm {
  const form = defaultForm();
  const c = req.constraints ?? {};
  const o = req.offers ?? {};
  const workloads: WorkloadForm[] = req.workloads.map((w, i) => ({
    ...newWorkload(i + 1),
    id: w.id,
    workloadType: w.workload_type ?? "training",
    gpusMin: str(w.gpus_min),
    gpusMax: str(w.gpus_max),
    gpusPerNode: str(w.gpus_per_node ?? 1),
    minVramGb: str(w.min_vram_gb),
    allowedGpuModels: list(w.allowed_gpu_models),
    allowedProviders: list(w.allowed_providers),
    deniedProviders: list(w.denied_providers),
    spotTolerant: Boolean(w.spot_tolerant),
    priority: str(w.priority ?? 1),
  }));
  return {
    ...form,
    name: req.name ? `${req.name} (copy)` : "",
    objective: req.objective ?? "cost",
    weightCost: str(req.weights?.cost ?? 1),
    weightPerformance: str(req.weights?.performance ?? 0),
    weightRisk: str(req.weights?.risk ?? 0),
    budgetPerHour: str(c.budget_per_hour),
    maxProviderShare: str(c.max_provider_share),
    maxRegionShare: str(c.max_region_share),
    maxSpotShare: str(c.max_spot_share),
    inferenceOnDemandFloor: c.inference_on_demand_floor ? str(c.inference_on_demand_floor) : "",
    minLaunchSuccess: c.min_launch_success_probability ? str(c.min_launch_success_probability) : "",
    riskTolerance: str(req.risk_tolerance ?? 0.5),
    horizonHours: str(req.horizon_hours ?? 1),
    providers: list(o.providers),
    regions: list(o.regions),
    includeSpot: o.include_spot ?? true,
    maxPriceAgeHours: o.max_age_s ? str(o.max_age_s / 3600) : "",
    timeLimitS: str(req.time_limit_s),
    backend: req.backend ?? "ortools",
    paretoPoints: str(req.pareto_points),
    workloads: workloads.length ? workloads : [newWorkload(1)],
  };
}
