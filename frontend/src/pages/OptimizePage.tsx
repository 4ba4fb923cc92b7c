/** Build an optimization request (workloads, constraints, objective), submit it, then follow the job. */
import { useState, type ChangeEvent, type FormEvent, type ReactNode } from "react";
import { newId } from "../ids";
import { messageOf, unwrap } from "../api/errors";
import type { JobAccepted, OptimizeRequest } from "../api/types";
import { ErrorBanner } from "../components/common";
import { loadDraft, saveDraft } from "../draft";
import { navigate, useQueryParams } from "../router";
import { useServices } from "../services";
import {
  buildRequest,
  defaultForm,
  newWorkload,
  type FormErrors,
  type OptimizeForm,
  type WorkloadForm,
} from "./optimizeForm";
import { formFromRequest } from "./requestOps";

function Field({ label, error, children, hint }: { label: string; error?: string; children: ReactNode; hint?: string }) {
  return (
    <label className={error ? "field invalid" : "field"}>
      <span>{label}</span>
      {children}
      {hint && !error && <small className="muted">{hint}</small>}
      {error && <small className="field-error">{error}</small>}
    </label>
  );
}

type Setter<T> = (patch: Partial<T>) => void;

function text<T>(value: T, key: keyof T, set: Setter<T>) {
  return {
    value: value[key] as unknown as string,
    onChange: (e: ChangeEvent<HTMLInputElement | HTMLSelectElement>) => set({ [key]: e.target.value } as Partial<T>),
  };
}

function WorkloadEditor(props: {
  w: WorkloadForm;
  index: number;
  errors: FormErrors;
  onChange: Setter<WorkloadForm>;
  onRemove?: () => void;
}) {
  const { w, index, errors, onChange } = props;
  const err = (f: string) => errors[`workloads.${index}.${f}`];
  return (
    <fieldset className="workload">
      <legend>
        Workload {index + 1}
        {props.onRemove && (
          <button type="button" className="link" onClick={props.onRemove}>
            remove
          </button>
        )}
      </legend>
      <div className="grid">
        <Field label="Id" error={err("id")}>
          <input {...text(w, "id", onChange)} />
        </Field>
        <Field label="Type">
          <select {...text(w, "workloadType", onChange)}>
            <option value="training">training</option>
            <option value="inference">inference</option>
            <option value="batch">batch</option>
          </select>
        </Field>
        <Field label="Min GPUs" error={err("gpusMin")}>
          <input type="number" min="1" {...text(w, "gpusMin", onChange)} />
        </Field>
        <Field label="Max GPUs" error={err("gpusMax")} hint="optional">
          <input type="number" min="1" {...text(w, "gpusMax", onChange)} />
        </Field>
        <Field label="GPUs per node" error={err("gpusPerNode")}>
          <input type="number" min="1" max="64" {...text(w, "gpusPerNode", onChange)} />
        </Field>
        <Field label="Min VRAM/GPU (GB)" error={err("minVramGb")}>
          <input type="number" min="0" step="any" {...text(w, "minVramGb", onChange)} />
        </Field>
        <Field label="GPU models" hint="comma-separated; empty = any">
          <input placeholder="A100 80GB SXM, L40S" {...text(w, "allowedGpuModels", onChange)} />
        </Field>
        <Field label="Allowed providers" hint="comma-separated; empty = any">
          <input placeholder="gcp, lambda" {...text(w, "allowedProviders", onChange)} />
        </Field>
        <Field label="Denied providers">
          <input {...text(w, "deniedProviders", onChange)} />
        </Field>
        <Field label="Priority" error={err("priority")}>
          <input type="number" min="1" max="10" {...text(w, "priority", onChange)} />
        </Field>
        <label className="check">
          <input type="checkbox" checked={w.spotTolerant} onChange={(e) => onChange({ spotTolerant: e.target.checked })} />
          Spot tolerant
        </label>
      </div>
    </fieldset>
  );
}

export function OptimizeForm({ onSubmit, busy, initial }: { onSubmit: (body: OptimizeRequest) => void; busy?: boolean; initial?: OptimizeForm }) {
  const [form, setForm] = useState<OptimizeForm>(() => initial ?? defaultForm());
  const [errors, setErrors] = useState<FormErrors>({});
  const set: Setter<OptimizeForm> = (patch) => setForm((f) => ({ ...f, ...patch }));
  const setWorkload = (i: number): Setter<WorkloadForm> => (patch) =>
    setForm((f) => ({ ...f, workloads: f.workloads.map((w, j) => (j === i ? { ...w, ...patch } : w)) }));

  const build = (): OptimizeRequest | null => {
    const result = buildRequest(form);
    setErrors(result.ok ? {} : result.errors);
    return result.ok ? result.body : null;
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const body = build();
    if (body) onSubmit(body);
  };
  const saveAsPolicy = () => {
    const body = build();
    if (body) {
      saveDraft(body);
      navigate("/policies");
    }
  };

  return (
    <form className="optimize" onSubmit={submit} aria-label="optimization request">
      <fieldset>
        <legend>Request</legend>
        <div className="grid">
          <Field label="Name">
            <input placeholder="nightly training fleet" {...text(form, "name", set)} />
          </Field>
          <Field label="Objective">
            <select {...text(form, "objective", set)}>
              <option value="cost">minimize cost</option>
              <option value="performance">maximize performance</option>
              <option value="weighted">weighted</option>
            </select>
          </Field>
          {form.objective === "weighted" && (
            <>
              <Field label="Weight: cost" error={errors.weightCost}>
                <input type="number" min="0" step="any" {...text(form, "weightCost", set)} />
              </Field>
              <Field label="Weight: performance" error={errors.weightPerformance}>
                <input type="number" min="0" step="any" {...text(form, "weightPerformance", set)} />
              </Field>
              <Field label="Weight: risk" error={errors.weightRisk}>
                <input type="number" min="0" step="any" {...text(form, "weightRisk", set)} />
              </Field>
            </>
          )}
          <Field label="Risk tolerance (0–1)" error={errors.riskTolerance}>
            <input type="number" min="0" max="1" step="0.05" {...text(form, "riskTolerance", set)} />
          </Field>
          <Field label="Horizon (hours)" error={errors.horizonHours}>
            <input type="number" min="0" step="any" {...text(form, "horizonHours", set)} />
          </Field>
          <Field label="Solver time limit (s)" error={errors.timeLimitS} hint="empty = server default">
            <input type="number" min="0" max="600" step="any" {...text(form, "timeLimitS", set)} />
          </Field>
          <Field label="Pareto points" error={errors.paretoPoints} hint="per front, 0–50; each is a solve">
            <input type="number" min="0" max="50" {...text(form, "paretoPoints", set)} />
          </Field>
          <Field label="Backend">
            <select {...text(form, "backend", set)}>
              <option value="ortools">OR-Tools</option>
              <option value="pulp">PuLP</option>
            </select>
          </Field>
        </div>
      </fieldset>

      {form.workloads.map((w, i) => (
        <WorkloadEditor
          key={i}
          w={w}
          index={i}
          errors={errors}
          onChange={setWorkload(i)}
          onRemove={form.workloads.length > 1 ? () => set({ workloads: form.workloads.filter((_, j) => j !== i) }) : undefined}
        />
      ))}
      <ErrorBanner message={errors.workloads} />
      <button type="button" className="secondary add-workload" onClick={() => set({ workloads: [...form.workloads, newWorkload(form.workloads.length + 1)] })}>
        + Add workload
      </button>

      <fieldset>
        <legend>Constraints</legend>
        <div className="grid">
          <Field label="Budget ($/hour)" error={errors.budgetPerHour}>
            <input type="number" min="0" step="any" {...text(form, "budgetPerHour", set)} />
          </Field>
          <Field label="Max provider share (0–1)" error={errors.maxProviderShare}>
            <input type="number" min="0" max="1" step="0.05" {...text(form, "maxProviderShare", set)} />
          </Field>
          <Field label="Max region share (0–1)" error={errors.maxRegionShare}>
            <input type="number" min="0" max="1" step="0.05" {...text(form, "maxRegionShare", set)} />
          </Field>
          <Field label="Max spot share (0–1)" error={errors.maxSpotShare}>
            <input type="number" min="0" max="1" step="0.05" {...text(form, "maxSpotShare", set)} />
          </Field>
          <Field label="Inference on-demand floor (0–1)" error={errors.inferenceOnDemandFloor}>
            <input type="number" min="0" max="1" step="0.05" {...text(form, "inferenceOnDemandFloor", set)} />
          </Field>
          <Field label="Min launch success (0–1)" error={errors.minLaunchSuccess} hint="leave out spot offers that get capacity less often">
            <input type="number" min="0" max="1" step="0.05" {...text(form, "minLaunchSuccess", set)} />
          </Field>
        </div>
      </fieldset>

      <fieldset>
        <legend>Offers to consider</legend>
        <div className="grid">
          <Field label="Providers" hint="comma-separated; empty = all">
            <input {...text(form, "providers", set)} />
          </Field>
          <Field label="Regions" hint="comma-separated; empty = all">
            <input {...text(form, "regions", set)} />
          </Field>
          <Field label="Max price age (hours)" error={errors.maxPriceAgeHours}>
            <input type="number" min="0" step="any" {...text(form, "maxPriceAgeHours", set)} />
          </Field>
          <label className="check">
            <input type="checkbox" checked={form.includeSpot} onChange={(e) => set({ includeSpot: e.target.checked })} />
            Include spot offers
          </label>
        </div>
      </fieldset>

      <div className="actions">
        <button type="submit" disabled={busy}>
          {busy ? "Submitting…" : "Optimize"}
        </button>
        <button type="button" className="secondary" onClick={saveAsPolicy}>
          Save as policy…
        </button>
        {Object.keys(errors).length > 0 && <span className="field-error">Fix the highlighted fields.</span>}
      </div>
    </form>
  );
}

/** A request handed over by "Clone into the form" (``#/optimize?clone=1``), read once. */
function clonedForm(params: URLSearchParams): OptimizeForm | undefined {
  if (params.get("clone") !== "1") return undefined;
  const draft = loadDraft();
  return draft ? formFromRequest(draft) : undefined;
}

export function OptimizePage() {
  const { api } = useServices();
  const [params] = useQueryParams();
  const [initial] = useState(() => clonedForm(params));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const submit = async (body: OptimizeRequest) => {
    setBusy(true);
    setError(null);
    try {
      const accepted: JobAccepted = unwrap(
        await api.POST("/optimize", { body, params: { header: { "Idempotency-Key": newId() } } }),
      );
      navigate(`/optimizations/${accepted.id}`);
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section>
      <h1>New optimization</h1>
      <ErrorBanner message={error} />
      {initial && <p className="notice">Cloned from an earlier request: change what you need and optimize.</p>}
      <OptimizeForm onSubmit={(body) => void submit(body)} busy={busy} initial={initial} />
    </section>
  );
}
