/**
 * Deployments: the list, and one deployment live: its steps over ``/ws/deployments/{id}``, its
 * instances with state, health, pauses and address, every provider attempt, the cost so far; extend, stop,
 * start, done, destroy.
 */
import { useCallback, useState } from "react";
import { messageOf, unwrap } from "../api/errors";
import type { components } from "../api/schema";
import { ErrorBanner, Pager, StatusBadge } from "../components/common";
import { ProgressPanel } from "../components/ProgressPanel";
import { dateTime, money, num } from "../format";
import { useAsync } from "../hooks/useAsync";
import { useJobProgress } from "../hooks/useJobProgress";
import { href, useQueryParams } from "../router";
import { privateKeyStore } from "../deployKeys";
import { useServices } from "../services";
import { instanceAction, PauseInfo, planStopStart, type StopStartAction } from "./stopStart";

type Deployment = components["schemas"]["DeploymentOut"];

/** While a job works on the deployment (deploy or teardown), its steps stream; actions need one not ending. */
const WORKING = new Set(["pending", "deploying", "ending"]);
const CLOSED = new Set(["ending", "ended"]);
const PAGE = 50;

export function DeploymentsPage() {
  const { api } = useServices();
  const [params, setParams] = useQueryParams();
  const status = params.get("status") ?? "";
  const offset = Math.max(0, Number(params.get("offset") ?? 0) || 0);
  const list = useAsync(
    async () => unwrap(await api.GET("/deployments", { params: { query: { limit: PAGE, offset, ...(status ? { status } : {}) } } })),
    [status, offset],
  );
  return (
    <section>
      <h1>Deployments</h1>
      <div className="filters" aria-label="deployment filters">
        <label>
          Status
          <input value={status} placeholder="running" onChange={(e) => setParams({ status: e.target.value })} />
        </label>
      </div>
      <ErrorBanner message={list.error} />
      {list.data && (
        <>
          <div className="scroll">
            <table className="data" aria-label="deployments">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Status</th>
                  <th className="num">Instances</th>
                  <th className="num">$/hour</th>
                  <th className="num">Cost so far</th>
                  <th>Expires</th>
                  <th>Created</th>
                </tr>
              </thead>
              <tbody>
                {list.data.items.map((d) => (
                  <tr key={d.id}>
                    <td>
                      <a href={href(`/deployments/${d.id}`)}>{d.name || d.id}</a>
                    </td>
                    <td>
                      <StatusBadge status={d.status} />
                    </td>
                    <td className="num">{d.instances.length}</td>
                    <td className="num">{money(d.rate_per_hour)}</td>
                    <td className="num">{money(d.cost_so_far)}</td>
                    <td>{dateTime(d.expires_at)}</td>
                    <td>{dateTime(d.created_at)}</td>
                  </tr>
                ))}
                {list.data.items.length === 0 && (
                  <tr>
                    <td colSpan={7} className="empty">
                      No deployments yet: open a finished optimization and press Deploy.
                    </td>
                  </tr>
                )}
              </tbody>
            </table>
          </div>
          <Pager total={list.data.total} limit={PAGE} offset={offset} onOffset={(o) => setParams({ status, offset: String(o) })} />
        </>
      )}
    </section>
  );
}

type OnStopStart = (action: StopStartAction, instances?: string[]) => void;

function Instances({ deployment, onStopStart }: { deployment: Deployment; onStopStart?: OnStopStart }) {
  const actions = Boolean(onStopStart) && deployment.instances.some((i) => i.can_stop);
  return (
    <div className="scroll">
      <table className="data" aria-label="instances">
        <thead>
          <tr>
            <th>Line</th>
            <th>Provider</th>
            <th>Region</th>
            <th>Instance</th>
            <th>State</th>
            <th>Address</th>
            <th className="num">$/hour</th>
            <th className="num">Cost so far</th>
            <th>Last error</th>
            {actions && <th>Stop / start</th>}
          </tr>
        </thead>
        <tbody>
          {deployment.instances.map((i) => (
            <tr key={i.id}>
              <td>
                {i.line}.{i.replica}
              </td>
              <td>{i.provider}</td>
              <td>{i.region || "—"}</td>
              <td>
                <code>{i.instance_type}</code> {i.gpu_count} × {i.gpu_model}
                {i.spot && <span className="tag tag-spot"> spot</span>}
              </td>
              <td>
                <StatusBadge status={i.state} /> <span className="muted">{dateTime(i.state_at)}</span>
                {i.health && (
                  <span className={i.health === "unhealthy" ? "field-error" : "muted"} title={i.health_detail ?? undefined}>
                    {" "}
                    · {i.health}
                  </span>
                )}
                <PauseInfo instance={i} />
              </td>
              <td>{i.ssh_command ? <code>{i.ssh_command}</code> : i.address ?? "—"}</td>
              <td className="num">{money(i.price_per_hour)}</td>
              <td className="num">{money(i.cost_so_far)}</td>
              <td className="muted">{i.last_error ?? ""}</td>
              {actions && (
                <td>
                  <InstanceButton instance={i} onStopStart={onStopStart!} />
                </td>
              )}
            </tr>
          ))}
          {deployment.instances.length === 0 && (
            <tr>
              <td colSpan={actions ? 10 : 9} className="empty">
                No instances recorded yet.
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </div>
  );
}

function InstanceButton({ instance, onStopStart }: { instance: Deployment["instances"][number]; onStopStart: OnStopStart }) {
  const action = instanceAction(instance);
  if (!action) return null;
  const label = `${instance.line}.${instance.replica}`;
  return (
    <button type="button" className="secondary small" aria-label={`${action} instance ${label}`} onClick={() => onStopStart(action, [instance.id])}>
      {action === "stop" ? "Stop" : "Start"}
    </button>
  );
}

/** Deployment-wide Stop and Start; off with the reason in words where no instance would take them. */
function StopStartButtons({ deployment, onStopStart }: { deployment: Deployment; onStopStart: OnStopStart }) {
  const plan = planStopStart(deployment.instances);
  const busy = WORKING.has(deployment.status) ? "wait until the deployment's job ends" : null;
  const button = (action: StopStartAction, text: string) => {
    const p = plan[action];
    const reason = busy ?? p.reason;
    return (
      <button type="button" className="secondary" disabled={reason !== null} title={reason ?? undefined}
        aria-describedby={plan.note ? "stop-start-note" : undefined}
        onClick={() => onStopStart(action, p.body?.instances)}>
        {text}
      </button>
    );
  };
  return (
    <>
      {button("stop", "Stop")}
      {button("start", "Start")}
    </>
  );
}

function Attempts({ deployment }: { deployment: Deployment }) {
  if (deployment.attempts.length === 0) return null;
  return (
    <details open={deployment.attempts.some((a) => a.outcome !== "ok" && a.outcome !== "created")}>
      <summary>
        {deployment.attempts.length} provider attempt{deployment.attempts.length === 1 ? "" : "s"}
      </summary>
      <div className="scroll">
        <table className="data compact" aria-label="attempts">
          <thead>
            <tr>
              <th>When</th>
              <th>Line</th>
              <th>Provider</th>
              <th>Outcome</th>
              <th>Reason</th>
            </tr>
          </thead>
          <tbody>
            {deployment.attempts.map((a, n) => (
              <tr key={n}>
                <td>{dateTime(a.at)}</td>
                <td>
                  {a.line}.{a.replica} #{a.attempt}
                </td>
                <td>{a.provider}</td>
                <td>{a.outcome}</td>
                <td className="muted">{a.reason ?? ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </details>
  );
}

export function DeploymentDetailPage({ id }: { id: string }) {
  const { api, auth, baseUrl, WebSocketImpl } = useServices();
  const loaded = useAsync(async () => unwrap(await api.GET("/deployments/{deployment_id}", { params: { path: { deployment_id: id } } })), [id]);
  const [actionError, setActionError] = useState<string | null>(null);
  const [hours, setHours] = useState("1");
  const [keyShown, setKeyShown] = useState(() => privateKeyStore(id).load());
  // A stop or start job leaves the deployment "running"; the job id it answered is followed instead.
  const [stopStartJob, setStopStartJob] = useState<string | null>(null);
  const dep = loaded.data;
  // Keyed by the current job: "done" starts a teardown job, and the socket then follows that one.
  const live = dep && WORKING.has(dep.status) ? dep.job_id : stopStartJob;
  const stopStartNote = dep && !CLOSED.has(dep.status) ? planStopStart(dep.instances).note : null;
  const socketUrl = useCallback(
    async (_jobId: string, after: number) => {
      const token = await auth.token();
      if (!token) throw new Error("signed out");
      const url = new URL(`${baseUrl}/ws/deployments/${encodeURIComponent(id)}`);
      url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
      if (after > 0) url.searchParams.set("after", String(after));
      return { url: url.toString(), protocols: ["cloudarb.bearer", token] };
    },
    [auth, baseUrl, id],
  );
  const progress = useJobProgress(live, { url: socketUrl, WebSocketImpl, onTerminal: loaded.reload });
  const path = { deployment_id: id };
  const act = async (fn: () => Promise<unknown>) => {
    setActionError(null);
    try {
      await fn();
      loaded.reload();
    } catch (err) {
      setActionError(messageOf(err));
    }
  };
  const stopStart: OnStopStart = (action, instances) =>
    void act(async () => {
      const body = instances ? { instances } : undefined;
      const accepted = action === "stop"
        ? unwrap(await api.POST("/deployments/{deployment_id}/stop", { params: { path }, body }))
        : unwrap(await api.POST("/deployments/{deployment_id}/start", { params: { path }, body }));
      setStopStartJob(accepted.job_id);
    });

  return (
    <section>
      <p>
        <a href={href("/deployments")}>‹ All deployments</a>
      </p>
      <ErrorBanner message={loaded.error ?? actionError} />
      {keyShown && (
        <div className="notice warn" role="status">
          <strong>The generated SSH private key is shown this once.</strong> Save it now.
          <pre>{keyShown}</pre>
          <button type="button" className="secondary small" onClick={() => { privateKeyStore(id).clear(); setKeyShown(null); }}>
            I saved it
          </button>
        </div>
      )}
      {dep && (
        <>
          <h1>
            {dep.name || "Deployment"} <StatusBadge status={dep.status} />
          </h1>
          <p className="muted">
            <code>{dep.id}</code> · from <a href={href(`/optimizations/${dep.optimization_id}`)}>optimization</a> · created {dateTime(dep.created_at)}
            {dep.end_reason ? ` · ended: ${dep.end_reason}` : ""}
          </p>
          <div className="cards">
            <div className="card">
              <div className="card-label">Rate</div>
              <div className="card-value">{money(dep.rate_per_hour)}/h</div>
            </div>
            <div className="card">
              <div className="card-label">Cost so far</div>
              <div className="card-value">{money(dep.cost_so_far)}</div>
            </div>
            <div className="card">
              <div className="card-label">Instances</div>
              <div className="card-value">{num(dep.instances.length)}</div>
            </div>
            <div className="card">
              <div className="card-label">Expires</div>
              <div className="card-value small">{dateTime(dep.expires_at)}</div>
            </div>
          </div>
          {live && <ProgressPanel state={progress} />}
          {!CLOSED.has(dep.status) && (
            <div className="button-row" aria-label="deployment actions">
              <label className="check">
                <input type="number" min="0.25" step="0.25" value={hours} onChange={(e) => setHours(e.target.value)} aria-label="hours to extend" />{" "}
                h
              </label>
              <button type="button" className="secondary" onClick={() => void act(async () =>
                unwrap(await api.POST("/deployments/{deployment_id}/extend", { params: { path }, body: { hours: Number(hours) } })))}>
                Extend
              </button>
              <StopStartButtons deployment={dep} onStopStart={stopStart} />
              <button type="button" className="secondary" onClick={() => void act(async () =>
                unwrap(await api.POST("/deployments/{deployment_id}/done", { params: { path } })))}>
                Done: tear down
              </button>
              <button type="button" className="danger" onClick={() => {
                if (window.confirm("Destroy every instance of this deployment now?")) {
                  void act(async () => unwrap(await api.DELETE("/deployments/{deployment_id}", { params: { path } })));
                }
              }}>
                Destroy now
              </button>
            </div>
          )}
          {stopStartNote && (
            <p id="stop-start-note" className="muted">
              {stopStartNote}
            </p>
          )}
          <h3>Instances</h3>
          <Instances deployment={dep} onStopStart={CLOSED.has(dep.status) ? undefined : stopStart} />
          <Attempts deployment={dep} />
        </>
      )}
      {loaded.loading && !dep && <p className="muted">Loading…</p>}
    </section>
  );
}
