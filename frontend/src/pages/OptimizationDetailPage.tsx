/** One optimization: live progress while it runs, then the stored result (fetched on the terminal event). */
import { useCallback, useState } from "react";
import { jobSocket } from "../api/client";
import { messageOf, unwrap } from "../api/errors";
import { isActive, type Allocation, type Optimization } from "../api/types";
import { ErrorBanner, StatusBadge } from "../components/common";
import { ProgressPanel } from "../components/ProgressPanel";
import { ResultActions, useSubmit } from "../components/ResultActions";
import { ResultView } from "../components/ResultView";
import { resolveAt } from "./requestOps";
import type { OptimizeRequest } from "../api/types";
import { dateTime } from "../format";
import { useAsync } from "../hooks/useAsync";
import { useJobProgress } from "../hooks/useJobProgress";
import { href } from "../router";
import { useServices } from "../services";

interface Loaded {
  optimization: Optimization;
  allocations: Allocation[];
}

export function OptimizationDetailPage({ id }: { id: string }) {
  const { api, auth, baseUrl, WebSocketImpl } = useServices();
  const [canceling, setCanceling] = useState(false);
  const [actionError, setActionError] = useState<string | null>(null);

  const loaded = useAsync<Loaded>(async () => {
    const path = { optimization_id: id };
    const optimization = unwrap(await api.GET("/optimize/{optimization_id}", { params: { path } }));
    const allocations =
      optimization.status === "finished"
        ? unwrap(await api.GET("/optimize/{optimization_id}/allocations", { params: { path } }))
        : [];
    return { optimization, allocations };
  }, [id]);

  const opt = loaded.data?.optimization;
  const follow = opt && isActive(opt.status) ? opt.job_id : null;
  const reload = loaded.reload;
  const socketUrl = useCallback(
    async (jobId: string, after: number) => {
      const token = await auth.token();
      if (!token) throw new Error("signed out");
      return jobSocket(baseUrl, jobId, token, after);
    },
    [auth, baseUrl],
  );
  const progress = useJobProgress(follow, { url: socketUrl, WebSocketImpl, onTerminal: reload });
  const resolve = useSubmit();

  const cancel = async () => {
    setCanceling(true);
    setActionError(null);
    try {
      unwrap(await api.DELETE("/optimize/{optimization_id}", { params: { path: { optimization_id: id } } }));
      reload();
    } catch (err) {
      setActionError(messageOf(err));
    } finally {
      setCanceling(false);
    }
  };

  return (
    <section>
      <p>
        <a href={href("/optimizations")}>‹ All optimizations</a>
      </p>
      <ErrorBanner message={loaded.error ?? actionError} />
      {opt && (
        <>
          <h1>
            {opt.name || "Optimization"} <StatusBadge status={(follow && progress.status) || opt.status} />
          </h1>
          <p className="muted">
            <code>{opt.id}</code> · created {dateTime(opt.created_at)} · updated {dateTime(opt.updated_at)}
            {opt.policy_id && (
              <>
                {" "}
                · policy <code>{opt.policy_id}</code>
              </>
            )}
          </p>
          {isActive(opt.status) && (
            <>
              <ProgressPanel state={progress} />
              <button type="button" className="danger" disabled={canceling} onClick={() => void cancel()}>
                {canceling ? "Canceling…" : "Cancel"}
              </button>
            </>
          )}
          {!isActive(opt.status) && <ResultActions optimization={opt} />}
          <ErrorBanner message={resolve.error} />
          {!isActive(opt.status) && loaded.data && (
            <ResultView
              optimization={opt}
              allocations={loaded.data.allocations}
              picking={resolve.busy}
              onPick={(kind, point) => void resolve.submit(resolveAt(opt.request as unknown as OptimizeRequest, kind, point))}
            />
          )}
          <details>
            <summary>Request</summary>
            <pre>{JSON.stringify(opt.request, null, 2)}</pre>
          </details>
        </>
      )}
      {loaded.loading && !opt && <p className="muted">Loading…</p>}
    </section>
  );
}
