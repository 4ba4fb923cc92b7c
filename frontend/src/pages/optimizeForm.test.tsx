import { fireEvent, render, screen } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import { contractErrors } from "../test/contract";
import { buildRequest, defaultForm, newWorkload, type OptimizeForm as Form } from "./optimizeForm";
import { OptimizeForm } from "./OptimizePage";

function form(patch: Partial<Form> = {}): Form {
  return { ...defaultForm(), ...patch };
}

describe("buildRequest", () => {
  it("turns the default form into a minimal request the server's schema accepts", () => {
    const result = buildRequest(defaultForm());
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.body).toEqual({
      workloads: [{ id: "workload-1", gpus_min: 8, gpus_per_node: 1, priority: 1, workload_type: "training", spot_tolerant: false }],
      objective: "cost",
      backend: "ortools",
      risk_tolerance: 0.5,
      horizon_hours: 1,
    });
    expect(contractErrors("OptimizeRequest", result.body)).toEqual([]);
  });

  it("maps every field of a full form to the request and stays within the contract", () => {
    const result = buildRequest(
      form({
        name: " nightly ",
        objective: "weighted",
        weightCost: "1",
        weightPerformance: "0.5",
        weightRisk: "0.2",
        budgetPerHour: "100",
        maxProviderShare: "0.6",
        maxSpotShare: "0.5",
        inferenceOnDemandFloor: "0.25",
        minLaunchSuccess: "0.8",
        horizonHours: "24",
        timeLimitS: "20",
        providers: "AWS, lambda",
        includeSpot: false,
        maxPriceAgeHours: "2",
        backend: "pulp",
        workloads: [
          { ...newWorkload(1), id: "train", gpusMin: "16", gpusMax: "32", gpusPerNode: "8", minVramGb: "80", allowedGpuModels: "H100 SXM, A100 80GB SXM", spotTolerant: true },
          { ...newWorkload(2), id: "serve", workloadType: "inference", gpusMin: "2", deniedProviders: "Vast" },
        ],
      }),
    );
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const body = result.body;
    expect(body.name).toBe("nightly");
    expect(body.weights).toEqual({ cost: 1, performance: 0.5, risk: 0.2 });
    expect(body.constraints).toEqual({ budget_per_hour: 100, max_provider_share: 0.6, max_spot_share: 0.5, inference_on_demand_floor: 0.25, min_launch_success_probability: 0.8 });
    expect(body.offers).toEqual({ providers: ["aws", "lambda"], include_spot: false, max_age_s: 7200 });
    expect(body.workloads[0]).toMatchObject({ id: "train", gpus_min: 16, gpus_max: 32, gpus_per_node: 8, min_vram_gb: 80, allowed_gpu_models: ["H100 SXM", "A100 80GB SXM"], spot_tolerant: true });
    expect(body.workloads[1]).toMatchObject({ id: "serve", workload_type: "inference", denied_providers: ["vast"] });
    expect(contractErrors("OptimizeRequest", body)).toEqual([]);
  });

  it("reports each invalid field instead of building a request", () => {
    const result = buildRequest(
      form({
        maxProviderShare: "0",
        minLaunchSuccess: "1.5",
        riskTolerance: "2",
        timeLimitS: "abc",
        workloads: [
          { ...newWorkload(1), id: "a", gpusMin: "8", gpusMax: "4" },
          { ...newWorkload(2), id: "a", gpusMin: "1.5" },
          { ...newWorkload(3), id: " ", gpusMin: "" },
        ],
      }),
    );
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors).toEqual({
      maxProviderShare: "must be more than 0",
      minLaunchSuccess: "must be at most 1",
      riskTolerance: "must be at most 1",
      timeLimitS: "not a number",
      "workloads.0.gpusMax": "must be ≥ min GPUs",
      "workloads.1.gpusMin": "must be a whole number",
      "workloads.1.id": "workload ids must be unique",
      "workloads.2.id": "required",
      "workloads.2.gpusMin": "required",
    });
  });

  it("the contract check itself rejects what the server would (unknown fields, missing workloads)", () => {
    expect(contractErrors("OptimizeRequest", { workloads: [] })).not.toEqual([]);
    expect(contractErrors("OptimizeRequest", { workloads: [{ id: "w", gpus_min: 1 }], bogus: 1 })).not.toEqual([]);
  });
});

describe("OptimizeForm", () => {
  it("submits the request built from what was typed, including an added workload", () => {
    const onSubmit = vi.fn();
    render(<OptimizeForm onSubmit={onSubmit} />);
    fireEvent.change(screen.getByLabelText("Name"), { target: { value: "demo" } });
    fireEvent.change(screen.getByLabelText("Budget ($/hour)"), { target: { value: "50" } });
    fireEvent.click(screen.getByText("+ Add workload"));
    const minGpus = screen.getAllByLabelText("Min GPUs");
    fireEvent.change(minGpus[1]!, { target: { value: "4" } });
    fireEvent.change(screen.getAllByLabelText("Type")[1]!, { target: { value: "inference" } });
    fireEvent.click(screen.getByText("Optimize"));
    expect(onSubmit).toHaveBeenCalledTimes(1);
    const body = onSubmit.mock.calls[0]![0];
    expect(body.name).toBe("demo");
    expect(body.constraints).toEqual({ budget_per_hour: 50 });
    expect(body.workloads.map((w: { id: string; gpus_min: number; workload_type: string }) => [w.id, w.gpus_min, w.workload_type])).toEqual([
      ["workload-1", 8, "training"],
      ["workload-2", 4, "inference"],
    ]);
    expect(contractErrors("OptimizeRequest", body)).toEqual([]);
  });

  it("sends the min launch success floor as a constraint, explained next to the field", () => {
    const onSubmit = vi.fn();
    render(<OptimizeForm onSubmit={onSubmit} />);
    const field = screen.getByLabelText(/^Min launch success \(0–1\)/);
    expect(field.closest("label")?.textContent).toContain("leave out spot offers that get capacity less often");
    fireEvent.change(field, { target: { value: "0.9" } });
    fireEvent.click(screen.getByText("Optimize"));
    expect(onSubmit).toHaveBeenCalledTimes(1);
    const body = onSubmit.mock.calls[0]![0];
    expect(body.constraints).toEqual({ min_launch_success_probability: 0.9 });
    expect(contractErrors("OptimizeRequest", body)).toEqual([]);
  });

  it("does not submit an invalid form and marks the field", () => {
    const onSubmit = vi.fn();
    render(<OptimizeForm onSubmit={onSubmit} />);
    fireEvent.change(screen.getByLabelText(/^Max GPUs/), { target: { value: "4" } });
    fireEvent.click(screen.getByText("Optimize"));
    expect(onSubmit).not.toHaveBeenCalled();
    expect(screen.getByText("must be ≥ min GPUs")).toBeTruthy();
    expect(screen.getByText("Fix the highlighted fields.")).toBeTruthy();
  });
});
