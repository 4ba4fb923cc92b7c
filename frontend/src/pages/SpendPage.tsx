/**
 * Spend: this month against the budget (cumulative spend per day next to the budget's even pace and
 * its limit), where the money goes (by provider, GPU model, deployment or workload), the running
 * rate and commitments, and the alerts (budget thresholds, orphans, leaked instances).
 */
import { useState } from "react";
import {
  Bar, BarChart, CartesianGrid, ComposedChart, Legend, Line, ReferenceLine, ResponsiveContainer, Tooltip, XAxis, YAxis,
} from "recharts";
import { unwrap } from "../api/errors";
import { cumulativeSpend, monthDays } from "../charts/spend";
import { colorAt, shortTime } from "../charts/theme";
import { ErrorBanner } from "../components/common";
import { dateTime, dollarTick, money, pct } from "../format";
import { useAsync } from "../hooks/useAsync";
import { useQueryParams } from "../router";
import { useServices } from "../services";

type By = "provider" | "gpu" | "deployment" | "workload";

interface Summary {
  month?: string;
  month_to_date?: number;
  today?: number;
  running_per_hour?: number;
  committed_to_expiry?: number;
  live_instances?: number;
  leaked_instances?: number;
  last_7_days?: number;
  budget?: { monthly_limit: number; used_share: number; remaining: number; hard_stop: boolean; thresholds: number[] } | null;
}

function Card({ label, value }: { label: string; value: string }) {
  return (
    <div className="card">
      <div className="card-label">{label}</div>
      <div className="card-value">{value}</div>
    </div>
  );
}

function MonthChart({ limit }: { limit: number | null }) {
  const { api } = useServices();
  const [now] = useState(() => new Date());
  const days = monthDays(now);
  const spend = useAsync(async () => {
    const daily = await Promise.all(
      days.slice(0, -1).map(async (d, i) => {
        const until = days[i + 1] ?? d;
        const report = unwrap(await api.GET("/costs", { params: { query: { by: "org", since: d.toISOString(), until: until.toISOString() } } }));
        return report.total;
      }),
    );
    return cumulativeSpend(days, daily, limit);
  }, [limit]);
  return (
    <div className="chart-panel">
      <h3>This month: spend against the budget</h3>
      <ErrorBanner message={spend.error} />
      {spend.data && (
        <div className="chart" role="img" aria-label="spend over the month">
          <ResponsiveContainer width="100%" height="100%">
            <ComposedChart data={spend.data} margin={{ top: 8, right: 16, bottom: 4, left: 4 }}>
              <CartesianGrid strokeDasharray="3 3" stroke="#e3e6ec" />
              <XAxis dataKey="t" type="number" scale="time" domain={["dataMin", "dataMax"]} tickFormatter={shortTime} fontSize={11} />
              <YAxis tickFormatter={dollarTick} width={56} />
              <Tooltip labelFormatter={(t) => new Date(Number(t)).toLocaleDateString()} formatter={(v) => money(Number(v))} />
              <Legend wrapperStyle={{ fontSize: 12 }} />
              <Bar dataKey="day" name="spent that day" fill={colorAt(4)} isAnimationActive={false} />
              <Line dataKey="cumulative" name="month to date" stroke={colorAt(0)} isAnimationActive={false} />
              {limit !== null && <Line dataKey="pace" name="budget pace" stroke={colorAt(5)} strokeDasharray="5 4" dot={false} isAnimationActive={false} />}
              {limit !== null && <ReferenceLine y={limit} stroke={colorAt(5)} label={{ value: "monthly limit", fontSize: 11, position: "insideTopRight" }} />}
            </ComposedChart>
          </ResponsiveContainer>
        </div>
      )}
    </div>
  );
}

function Breakdown() {
  const { api } = useServices();
  const [params, setParams] = useQueryParams();
  const by = (["gpu", "deployment", "workload"].includes(params.get("by") ?? "") ? params.get("by") : "provider") as By;
  const report = useAsync(async () => unwrap(await api.GET("/costs", { params: { query: { by } } })), [by]);
  const rows = [...(report.data?.items ?? [])].sort((a, b) => b.amount - a.amount).slice(0, 20);
  return (
    <div className="chart-panel">
      <h3>
        Spend by{" "}
        <select value={by} onChange={(e) => setParams({ by: e.target.value })} aria-label="spend by">
          <option value="provider">provider</option>
          <option value="gpu">GPU model</option>
          <option value="deployment">deployment</option>
          <option value="workload">workload</option>
        </select>
      </h3>
      <ErrorBanner message={report.error} />
      {report.data && rows.length === 0 && <p className="muted">Nothing spent yet.</p>}
      {rows.length > 0 && (
        <div className="chart small" role="img" aria-label="spend breakdown">
          <ResponsiveContainer width="100%" height="100%">
            <BarChart data={rows} margin={{ top: 4, right: 12, bottom: 4, left: 4 }}>
              <CartesianGrid strokeDasharray="3 3" stroke="#e3e6ec" />
              <XAxis dataKey="key" fontSize={11} />
              <YAxis tickFormatter={dollarTick} width={52} />
              <Tooltip formatter={(v) => money(Number(v))} />
              <Bar dataKey="amount" name="USD" fill={colorAt(0)} isAnimationActive={false} />
            </BarChart>
          </ResponsiveContainer>
        </div>
      )}
      {report.data && <p className="legend-note">Total {money(report.data.total)}.</p>}
    </div>
  );
}

function Alerts() {
  const { api } = useServices();
  const alerts = useAsync(async () => unwrap(await api.GET("/alerts", { params: { query: { limit: 50 } } })), []);
  return (
    <div className="chart-panel">
      <h3>Alerts</h3>
      <ErrorBanner message={alerts.error} />
      {alerts.data && alerts.data.length === 0 && <p className="muted">No alerts.</p>}
      {alerts.data && alerts.data.length > 0 && (
        <ul className="plain" aria-label="alerts">
          {alerts.data.map((a) => (
            <li key={a.id}>
              <strong>{a.kind}</strong> {a.message} <span className="muted">{dateTime(a.created_at)}</span>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function SpendPage() {
  const { api } = useServices();
  const summary = useAsync(async () => unwrap(await api.GET("/costs/summary", {})) as Summary, []);
  const s = summary.data;
  const budget = s?.budget ?? null;
  return (
    <section>
      <h1>Spend</h1>
      <ErrorBanner message={summary.error} />
      {s && (
        <div className="cards">
          <Card label={`Month to date (${s.month ?? ""})`} value={money(s.month_to_date)} />
          <Card label="Today" value={money(s.today)} />
          <Card label="Last 7 days" value={money(s.last_7_days)} />
          <Card label="Running rate" value={`${money(s.running_per_hour)}/h`} />
          <Card label="Committed until expiry" value={money(s.committed_to_expiry)} />
          <Card label="Live / leaked instances" value={`${s.live_instances ?? 0} / ${s.leaked_instances ?? 0}`} />
          {budget && <Card label={`Budget used of ${money(budget.monthly_limit)}`} value={pct(budget.used_share * 100)} />}
        </div>
      )}
      {s && <MonthChart limit={budget ? budget.monthly_limit : null} />}
      {s && !budget && <p className="muted">No monthly budget is set (an admin sets it with PUT /budget).</p>}
      <div className="chart-grid">
        <Breakdown />
        <Alerts />
      </div>
    </section>
  );
}
