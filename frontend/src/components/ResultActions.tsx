/** The result screen's buttons: Re-run, Clone into the form, Export (the outputs issue's formats), Deploy. */
import { useState } from "react";
import { messageOf, unwrap } from "../api/errors";
import { authedFetch, ensureOk, filenameOf, saveBlob } from "../api/raw";
import type { JobAccepted, Optimization, OptimizeRequest } from "../api/types";
import { saveDraft } from "../draft";
import { newId } from "../ids";
import { navigate } from "../router";
import { useServices } from "../services";
import { privateKeyStore } from "../deployKeys";
import { ErrorBanner } from "./common";

export const EXPORT_FORMATS = [
  { value: "terraform", label: "Terraform", ext: "tf" },
  { value: "kubernetes", label: "Kubernetes", ext: "yaml" },
  { value: "skypilot", label: "SkyPilot", ext: "yaml" },
  { value: "dstack", label: "dstack", ext: "yml" },
  { value: "csv", label: "CSV", ext: "csv" },
] as const;

/** Submit a request as a new optimization and open it. */
export function useSubmit() {
  const { api } = useServices();
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
  return { submit, busy, error };
}

export function ResultActions({ optimization }: { optimization: Optimization }) {
  const { api, auth, baseUrl } = useServices();
  const { submit, busy, error: submitError } = useSubmit();
  const [format, setFormat] = useState<string>("terraform");
  const [working, setWorking] = useState<"export" | "deploy" | null>(null);
  const [error, setError] = useState<string | null>(null);
  const request = optimization.request as unknown as OptimizeRequest;
  const finished = optimization.status === "finished";
  const id = encodeURIComponent(optimization.id);

  const exportFile = async () => {
    setWorking("export");
    setError(null);
    try {
      const res = await ensureOk(await authedFetch(baseUrl, auth, `/optimize/${id}/export?format=${encodeURIComponent(format)}`));
      const ext = EXPORT_FORMATS.find((f) => f.value === format)?.ext ?? "txt";
      saveBlob(await res.blob(), filenameOf(res, `cloudarb-${optimization.id}-${format}.${ext}`));
    } catch (err) {
      const text = messageOf(err);
      setError(text.startsWith("404") || text.includes("Not Found") ? "This server has no export for this format yet." : text);
    } finally {
      setWorking(null);
    }
  };

  const deploy = async () => {
    if (!window.confirm("Deploy this allocation? Instances are created at the providers and billed.")) return;
    setWorking("deploy");
    setError(null);
    try {
      const accepted = unwrap(
        await api.POST("/optimize/{optimization_id}/deploy", {
          params: { path: { optimization_id: optimization.id }, header: { "Idempotency-Key": newId() } },
          body: {},
        }),
      );
      if (accepted.private_key) privateKeyStore(accepted.id).save(accepted.private_key);
      const deployment = accepted.id;
      navigate(deployment ? `/deployments/${deployment}` : "/deployments");
    } catch (err) {
      const text = messageOf(err);
      setError(text.startsWith("404") || text.includes("Not Found") ? "This server cannot deploy yet." : text);
    } finally {
      setWorking(null);
    }
  };

  return (
    <>
      <div className="button-row" aria-label="result actions">
        <button type="button" className="secondary" disabled={busy} onClick={() => void submit({ ...request })}>
          {busy ? "Submitting…" : "Re-run"}
        </button>
        <button
          type="button"
          className="secondary"
          onClick={() => {
            saveDraft(request);
            navigate("/optimize?clone=1");
          }}
        >
          Clone into the form
        </button>
        {finished && (
          <>
            <select value={format} onChange={(e) => setFormat(e.target.value)} aria-label="export format">
              {EXPORT_FORMATS.map((f) => (
                <option key={f.value} value={f.value}>
                  {f.label}
                </option>
              ))}
            </select>
            <button type="button" className="secondary" disabled={working !== null} onClick={() => void exportFile()}>
              {working === "export" ? "Exporting…" : "Export"}
            </button>
            <button type="button" disabled={working !== null} onClick={() => void deploy()}>
              {working === "deploy" ? "Deploying…" : "Deploy"}
            </button>
          </>
        )}
      </div>
      <ErrorBanner message={error ?? submitError} />
    </>
  );
}
