/** Saved policies: a request re-optimized on a schedule; create, edit, pause/resume, delete, run now,
 * and see past decisions with their savings over time. */
import { useState, type FormEvent } from "react";
import { CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import { colorAt, shortTime } from "../charts/theme";
import { messageOf, unwrap } from "../api/errors";
import type { OptimizeRequest, Policy, PolicyIn, PolicyPatch, PolicyRun } from "../api/types";
import { ErrorBanner } from "../components/common";
import { loadDraft } from "../draft";
import { dateTime, dollarTick, money, pct } from "../format";
import { useAsync } from "../hooks/useAsync";
import { href, navigate } from "../router";
import { useServices } from "../services";

const EXAMPLE_REQUEST: OptimizeRequest = {
  name: "8 GPUs for training",
  workloads: [{ id: "train", gpus_min: 8, workload_type: "training", spot_tolerant: false }],
  objective: "cost",
};

function PolicyRuns({ policy }: { policy: Policy }) {
  const { api } = useServices();
  const runs = useAsync(
    async () => unwrap(await api.GET("/policies/{policy_id}/runs", { params: { path: { policy_id: policy.id }, query: { limit: 20 } } })),
    [policy.id],
  );
  if (runs.error) return <ErrorBanner message={runs.error} />;
  if (!runs.data) return <p className="muted">Loading runs…</p>;
  if (runs.data.length === 0) return <p className="muted">No runs yet; next run {dateTime(policy.next_run_at)}.</p>;
  return (
    <>
    <RunsChart runs={runs.data} />
    <table className="data compact" aria-label={`runs of ${policy.name}`}>
      <thead>
        <tr>
          <th>When</th>
          <th>Decision</th>
          <th className="num">Current $/hour</th>
          <th className="num">New $/hour</th>
          <th className="num">Savings</th>
          <th>Optimization</th>
        </tr>
      </thead>
      <tbody>
        {runs.data.map((r) => (
          <tr key={r.id}>
            <td>{dateTime(r.created_at)}</td>
            <td>{r.decision ? <span className={`tag tag-${r.decision}`}>{r.decision}</span> : "pending"}</td>
            <td className="num">{money(r.current_cost_per_hour)}</td>
            <td className="num">{money(r.new_cost_per_hour)}</td>
            <td className="num">{pct(r.savings_pct)}</td>
            <td>
              <a href={href(`/optimizations/${r.optimization_id}`)}>view</a>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
    </>
  );
}

/** Cost per hour of each run (current vs new) and the savings found, oldest first. */
export function runRows(runs: PolicyRun[]): { t: number; current?: number; proposed?: number; savings?: number }[] {
  return runs
    .map((r) => ({
      t: Date.parse(r.created_at),
      ...(r.current_cost_per_hour !== null ? { current: r.current_cost_per_hour } : {}),
      ...(r.new_cost_per_hour !== null ? { proposed: r.new_cost_per_hour } : {}),
      ...(r.savings_pct !== null ? { savings: r.savings_pct } : {}),
    }))
    .filter((r) => Number.isFinite(r.t))
    .sort((a, b) => a.t - b.t);
}

function RunsChart({ runs }: { runs: PolicyRun[] }) {
  const rows = runRows(runs);
  if (rows.length === 0) return null;
  return (
    <div className="chart small" role="img" aria-label="policy savings over time">
      <ResponsiveContainer width="100%" height="100%">
        <LineChart data={rows} margin={{ top: 6, right: 12, bottom: 4, left: 4 }}>
          <CartesianGrid strokeDasharray="3 3" stroke="#e3e6ec" />
          <XAxis dataKey="t" type="number" scale="time" domain={["dataMin", "dataMax"]} tickFormatter={shortTime} fontSize={11} />
          <YAxis yAxisId="cost" tickFormatter={dollarTick} width={52} />
          <YAxis yAxisId="pct" orientation="right" tickFormatter={(v: number) => `${v.toFixed(0)}%`} width={44} />
          <Tooltip labelFormatter={(t) => new Date(Number(t)).toLocaleString()} />
          <Legend wrapperStyle={{ fontSize: 12 }} />
          <Line yAxisId="cost" dataKey="current" name="current $/h" stroke={colorAt(0)} isAnimationActive={false} />
          <Line yAxisId="cost" dataKey="proposed" name="new $/h" stroke={colorAt(2)} isAnimationActive={false} />
          <Line yAxisId="pct" dataKey="savings" name="savings %" stroke={colorAt(1)} strokeDasharray="4 3" isAnimationActive={false} />
        </LineChart>
      </ResponsiveContainer>
    </div>
  );
}

/** Edit a policy in place (``PATCH /policies/{id}``): name, schedule, threshold, request. */
function EditPolicy({ policy, onSaved, onCancel }: { policy: Policy; onSaved: () => void; onCancel: () => void }) {
  const { api } = useServices();
  const [name, setName] = useState(policy.name);
  const [scheduleKind, setScheduleKind] = useState<"interval" | "cron">(policy.cron ? "cron" : "interval");
  const [schedule, setSchedule] = useState(policy.cron ?? String(policy.interval_s ?? 3600));
  const [threshold, setThreshold] = useState(String(policy.keep_threshold_pct));
  const [requestText, setRequestText] = useState(() => JSON.stringify(policy.request, null, 2));
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const save = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    let request: OptimizeRequest;
    try {
      request = JSON.parse(requestText) as OptimizeRequest;
    } catch {
      setError("the request is not valid JSON");
      return;
    }
    const body: PolicyPatch = { name: name.trim(), request, keep_threshold_pct: Number(threshold) };
    if (scheduleKind === "cron") body.cron = schedule.trim();
    else body.interval_s = Number(schedule);
    setBusy(true);
    try {
      unwrap(await api.PATCH("/policies/{policy_id}", { params: { path: { policy_id: policy.id } }, body }));
      onSaved();
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="policy-form" onSubmit={(e) => void save(e)} aria-label={`edit ${policy.name}`}>
      <ErrorBanner message={error} />
      <div className="grid">
        <label className="field">
          <span>Name</span>
          <input required value={name} onChange={(e) => setName(e.target.value)} />
        </label>
        <label className="field">
          <span>Schedule</span>
          <select value={scheduleKind} onChange={(e) => setScheduleKind(e.target.value as "interval" | "cron")}>
            <option value="interval">every N seconds</option>
            <option value="cron">cron expression</option>
          </select>
        </label>
        <label className="field">
          <span>{scheduleKind === "cron" ? "Cron" : "Interval (s, ≥ 10)"}</span>
          <input required value={schedule} onChange={(e) => setSchedule(e.target.value)} />
        </label>
        <label className="field">
          <span>Keep-current threshold (%)</span>
          <input type="number" min="0" max="100" step="any" value={threshold} onChange={(e) => setThreshold(e.target.value)} />
        </label>
      </div>
      <label className="field">
        <span>Optimization request (JSON)</span>
        <textarea rows={8} value={requestText} onChange={(e) => setRequestText(e.target.value)} spellCheck={false} />
      </label>
      <div className="row-actions">
        <button type="submit" disabled={busy}>{busy ? "Saving…" : "Save"}</button>
        <button type="button" className="secondary" onClick={onCancel}>Cancel</button>
      </div>
    </form>
  );
}

function CreatePolicy({ onCreated }: { onCreated: () => void }) {
  const { api } = useServices();
  const [name, setName] = useState("");
  const [scheduleKind, setScheduleKind] = useState<"interval" | "cron">("interval");
  const [schedule, setSchedule] = useState("3600");
  const [threshold, setThreshold] = useState("");
  const [enabled, setEnabled] = useState(true);
  const [requestText, setRequestText] = useState(() => JSON.stringify(loadDraft() ?? EXAMPLE_REQUEST, null, 2));
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    let request: OptimizeRequest;
    try {
      request = JSON.parse(requestText) as OptimizeRequest;
    } catch {
      setError("the request is not valid JSON");
      return;
    }
    const body: PolicyIn = { name: name.trim(), request, enabled };
    if (scheduleKind === "cron") body.cron = schedule.trim();
    else body.interval_s = Number(schedule);
    if (threshold.trim()) body.keep_threshold_pct = Number(threshold);
    setBusy(true);
    try {
      unwrap(await api.POST("/policies", { body }));
      setName("");
      onCreated();
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="policy-form" onSubmit={(e) => void submit(e)} aria-label="new policy">
      <h2>New policy</h2>
      <ErrorBanner message={error} />
      <div className="grid">
        <label className="field">
          <span>Name</span>
          <input required value={name} onChange={(e) => setName(e.target.value)} />
        </label>
        <label className="field">
          <span>Schedule</span>
          <select value={scheduleKind} onChange={(e) => {
            const kind = e.target.value as "interval" | "cron";
            setScheduleKind(kind);
            setSchedule(kind === "cron" ? "*/15 * * * *" : "3600");
          }}>
            <option value="interval">every N seconds</option>
            <option value="cron">cron expression</option>
          </select>
        </label>
        <label className="field">
          <span>{scheduleKind === "cron" ? "Cron" : "Interval (s, ≥ 10)"}</span>
          <input required value={schedule} onChange={(e) => setSchedule(e.target.value)} />
        </label>
        <label className="field">
          <span>Keep-current threshold (%)</span>
          <input type="number" min="0" max="100" step="any" placeholder="server default" value={threshold} onChange={(e) => setThreshold(e.target.value)} />
        </label>
        <label className="check">
          <input type="checkbox" checked={enabled} onChange={(e) => setEnabled(e.target.checked)} /> Enabled
        </label>
      </div>
      <label className="field">
        <span>
          Optimization request (JSON; the optimize screen's “Save as policy…” fills this in)
        </span>
        <textarea rows={10} value={requestText} onChange={(e) => setRequestText(e.target.value)} spellCheck={false} />
      </label>
      <button type="submit" className="align-start" disabled={busy}>
        {busy ? "Creating…" : "Create policy"}
      </button>
    </form>
  );
}

export function PoliciesPage() {
  const { api } = useServices();
  const policies = useAsync(async () => unwrap(await api.GET("/policies", { params: { query: { limit: 200 } } })), []);
  const [open, setOpen] = useState<string | null>(null);
  const [editing, setEditing] = useState<string | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);

  const act = async (fn: () => Promise<void>) => {
    setActionError(null);
    try {
      await fn();
    } catch (err) {
      setActionError(messageOf(err));
    }
  };
  const remove = (p: Policy) =>
    act(async () => {
      if (!window.confirm(`Delete policy “${p.name}”?`)) return;
      unwrap(await api.DELETE("/policies/{policy_id}", { params: { path: { policy_id: p.id } } }));
      policies.reload();
    });
  const setEnabled = (p: Policy, enabled: boolean) =>
    act(async () => {
      unwrap(await api.PATCH("/policies/{policy_id}", { params: { path: { policy_id: p.id } }, body: { enabled } }));
      policies.reload();
    });
  const runNow = (p: Policy) =>
    act(async () => {
      const accepted = unwrap(await api.POST("/policies/{policy_id}/run", { params: { path: { policy_id: p.id } } }));
      navigate(`/optimizations/${accepted.id}`);
    });

  return (
    <section>
      <h1>Policies</h1>
      <ErrorBanner message={policies.error ?? actionError} />
      {policies.data && (
        <div className="scroll">
        <table className="data">
          <thead>
            <tr>
              <th>Name</th>
              <th>Schedule</th>
              <th>Enabled</th>
              <th>Next run</th>
              <th>Keep threshold</th>
              <th>Current</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {policies.data.flatMap((p) => [
              <tr key={p.id}>
                <td>
                  <button type="button" className="link" onClick={() => setOpen(open === p.id ? null : p.id)}>
                    {open === p.id ? "▾" : "▸"} {p.name}
                  </button>
                </td>
                <td>{p.cron ? <code>{p.cron}</code> : `every ${p.interval_s} s`}</td>
                <td>{p.enabled ? "active" : <span className="tag tag-paused">paused</span>}</td>
                <td>{dateTime(p.next_run_at)}</td>
                <td>{pct(p.keep_threshold_pct)}</td>
                <td>
                  {p.current_optimization_id ? <a href={href(`/optimizations/${p.current_optimization_id}`)}>view</a> : "—"}
                </td>
                <td>
                  <div className="row-actions">
                  <button type="button" className="secondary small" onClick={() => void runNow(p)}>
                    Run now
                  </button>
                  <button type="button" className="secondary small" onClick={() => void setEnabled(p, !p.enabled)}>
                    {p.enabled ? "Pause" : "Resume"}
                  </button>
                  <button type="button" className="secondary small" onClick={() => setEditing(editing === p.id ? null : p.id)}>
                    Edit
                  </button>
                  <button type="button" className="danger small" onClick={() => void remove(p)}>
                    Delete
                  </button>
                  </div>
                </td>
              </tr>,
              editing === p.id ? (
                <tr key={`${p.id}-edit`} className="sub">
                  <td colSpan={7}>
                    <EditPolicy policy={p} onCancel={() => setEditing(null)} onSaved={() => { setEditing(null); policies.reload(); }} />
                  </td>
                </tr>
              ) : null,
              open === p.id ? (
                <tr key={`${p.id}-runs`} className="sub">
                  <td colSpan={7}>
                    <PolicyRuns policy={p} />
                  </td>
                </tr>
              ) : null,
            ])}
            {policies.data.length === 0 && (
              <tr>
                <td colSpan={7} className="empty">
                  No policies yet.
                </td>
              </tr>
            )}
          </tbody>
        </table>
        </div>
      )}
      <CreatePolicy onCreated={policies.reload} />
    </section>
  );
}
