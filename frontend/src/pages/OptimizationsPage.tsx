/** Every optimization of the organization, newest first, filterable by status, with cancel. */
import { useState } from "react";
import { messageOf, unwrap } from "../api/errors";
import { isActive, resultOf, type JobStatus } from "../api/types";
import { ErrorBanner, Pager, StatusBadge } from "../components/common";
import { dateTime, money } from "../format";
import { useAsync } from "../hooks/useAsync";
import { href } from "../router";
import { useServices } from "../services";

const PAGE = 25;
const STATUSES: JobStatus[] = ["queued", "running", "finished", "infeasible", "failed", "canceled"];

export function OptimizationsPage() {
  const { api } = useServices();
  const [status, setStatus] = useState<JobStatus | "">("");
  const [offset, setOffset] = useState(0);
  const [actionError, setActionError] = useState<string | null>(null);
  const page = useAsync(
    async () =>
      unwrap(
        await api.GET("/optimize", {
          params: { query: { limit: PAGE, offset, ...(status ? { status } : {}) } },
        }),
      ),
    [status, offset],
  );

  const cancel = async (id: string) => {
    setActionError(null);
    try {
      unwrap(await api.DELETE("/optimize/{optimization_id}", { params: { path: { optimization_id: id } } }));
      page.reload();
    } catch (err) {
      setActionError(messageOf(err));
    }
  };

  return (
    <section>
      <h1>Optimizations</h1>
      <div className="toolbar">
        <label>
          Status{" "}
          <select
            value={status}
            onChange={(e) => {
              setStatus(e.target.value as JobStatus | "");
              setOffset(0);
            }}
          >
            <option value="">all</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <button type="button" className="secondary" onClick={page.reload}>
          Refresh
        </button>
        <a className="button" href={href("/optimize")}>
          New optimization
        </a>
      </div>
      <ErrorBanner message={page.error ?? actionError} />
      {page.data && (
        <>
          <table className="data">
            <thead>
              <tr>
                <th>Name</th>
                <th>Status</th>
                <th>Created</th>
                <th className="num">$/hour</th>
                <th>Source</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {page.data.items.map((o) => (
                <tr key={o.id}>
                  <td>
                    <a href={href(`/optimizations/${o.id}`)}>{o.name || o.id.slice(0, 12)}</a>
                  </td>
                  <td>
                    <StatusBadge status={o.status} />
                  </td>
                  <td>{dateTime(o.created_at)}</td>
                  <td className="num">{money(resultOf(o)?.cost_per_hour ?? null)}</td>
                  <td>{o.policy_id ? "policy" : "manual"}</td>
                  <td>
                    {isActive(o.status) && (
                      <button type="button" className="danger small" onClick={() => void cancel(o.id)}>
                        Cancel
                      </button>
                    )}
                  </td>
                </tr>
              ))}
              {page.data.items.length === 0 && (
                <tr>
                  <td colSpan={6} className="empty">
                    No optimizations yet.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
          <Pager total={page.data.total} limit={PAGE} offset={offset} onOffset={setOffset} />
        </>
      )}
    </section>
  );
}
