/**
 * Forecasts as fan charts: the stored quantile paths of each series (widest interval lightest), the
 * point forecast, the last observed value, and the backtest figures that earned the model its place.
 * Filters in the URL: ``#/forecasts?gpu=H100+SXM&kind=price``.
 */
import { useCallback, useState } from "react";
import { jobSocket } from "../api/client";
import { Area, CartesianGrid, ComposedChart, Legend, Line, ReferenceLine, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import { messageOf, unwrap } from "../api/errors";
import type { components } from "../api/schema";
import { fanRows } from "../charts/fan";
import { skillStatement } from "../charts/skill";
import { colorAt, shortTime } from "../charts/theme";
import { ErrorBanner } from "../components/common";
import { dateTime, num, pct } from "../format";
import { useAsync } from "../hooks/useAsync";
import { useJobProgress } from "../hooks/useJobProgress";
import { useQueryParams } from "../router";
import { useServices } from "../services";

type Forecast = components["schemas"]["ForecastOut"];

const OPACITY = [0.18, 0.3, 0.45];

/** What the forecast's values measure (a price forecast follows its offer's price per instance-hour). */
export function unitOf(forecast: Pick<Forecast, "kind">): string {
  return forecast.kind === "price" ? "$ per instance-hour" : "GPU-hours per hour";
}

function FanChart({ forecast }: { forecast: Forecast }) {
  const fan = fanRows(forecast);
  if (fan.rows.length === 0) return <p className="muted">Empty forecast.</p>;
  return (
    <div className="chart small" role="img" aria-label={`forecast fan of ${forecast.series_key}`}>
      <ResponsiveContainer width="100%" height="100%">
        <ComposedChart data={fan.rows} margin={{ top: 6, right: 12, bottom: 4, left: 4 }}>
          <CartesianGrid strokeDasharray="3 3" stroke="#e3e6ec" />
          <XAxis dataKey="t" type="number" scale="time" domain={["dataMin", "dataMax"]} tickFormatter={shortTime} fontSize={11} />
          <YAxis width={64} fontSize={11} tickFormatter={(v: number) => num(v, 3)} domain={["auto", "auto"]}
            label={{ value: unitOf(forecast), angle: -90, position: "insideLeft", fontSize: 11, dy: 50, dx: 2 }} />
          <Tooltip labelFormatter={(t) => new Date(Number(t)).toLocaleString()}
            formatter={(v) => (Array.isArray(v) ? `${num(Number(v[0]), 4)} – ${num(Number(v[1]), 4)}` : num(Number(v), 4))} />
          <Legend wrapperStyle={{ fontSize: 11 }} />
          {fan.bands.map((b, i) => (
            <Area key={b.key} dataKey={b.key} name={b.label} stroke="none" fill={colorAt(0)}
              fillOpacity={OPACITY[Math.min(i, OPACITY.length - 1)]} isAnimationActive={false} />
          ))}
          {fan.median && <Line dataKey="median" name="median" stroke={colorAt(0)} dot={false} isAnimationActive={false} />}
          <Line dataKey="point" name="point forecast" stroke={colorAt(1)} strokeDasharray="4 3" dot={false} isAnimationActive={false} />
          {forecast.last_observed !== null && forecast.last_observed !== undefined && (
            <ReferenceLine y={forecast.last_observed} stroke="#888" strokeDasharray="2 2" label={{ value: "last observed", fontSize: 10, position: "insideTopLeft" }} />
          )}
        </ComposedChart>
      </ResponsiveContainer>
    </div>
  );
}

function BacktestDetails({ series }: { series: string }) {
  const { api } = useServices();
  const bt = useAsync(async () => unwrap(await api.GET("/forecasts/{series}/backtest", { params: { path: { series } } })), [series]);
  if (bt.error) return <ErrorBanner message={bt.error} />;
  if (!bt.data) return <p className="muted">Loading backtest…</p>;
  return (
    <table className="data compact" aria-label={`model versions of ${series}`}>
      <thead>
        <tr>
          <th>Model</th>
          <th>Trained</th>
          <th>Decision</th>
          <th>Metrics</th>
        </tr>
      </thead>
      <tbody>
        {bt.data.versions.map((v) => (
          <tr key={v.id}>
            <td>
              {v.model} {v.is_champion && <span className="tag tag-adopt">champion</span>}
            </td>
            <td>{dateTime(v.trained_at)}</td>
            <td>{v.decision}</td>
            <td className="muted">
              {Object.entries(v.metrics)
                .filter(([, x]) => typeof x === "number")
                .slice(0, 5)
                .map(([k, x]) => `${k} ${num(x as number, 3)}`)
                .join(" · ")}
            </td>
          </tr>
        ))}
        {bt.data.versions.length === 0 && (
          <tr>
            <td colSpan={4} className="empty">
              No model versions stored{bt.data.fallback_reason ? `: ${bt.data.fallback_reason}` : ""}.
            </td>
          </tr>
        )}
      </tbody>
    </table>
  );
}

function SkillNote({ forecast }: { forecast: Forecast }) {
  const statement = skillStatement(forecast);
  if (!statement) return null;
  return (
    <div className={`skill-note skill-${statement.verdict}`} role="note" aria-label="skill over last value">
      <strong>{statement.headline}</strong>
      {statement.detail && <span className="muted"> {statement.detail}</span>}
      {statement.rule && (
        <details className="more">
          <summary>The rule</summary>
          {statement.rule}
        </details>
      )}
    </div>
  );
}

function ForecastCard({ forecast }: { forecast: Forecast }) {
  const [open, setOpen] = useState(false);
  const b = forecast.backtest;
  const skill = forecast.skill;
  const title = forecast.kind === "price"
    ? `${forecast.provider ?? ""} ${forecast.region ?? ""} ${forecast.gpu_model ?? ""}${forecast.spot ? " spot" : ""}`
    : `demand of ${forecast.workload_id ?? forecast.series_key}`;
  return (
    <div className="chart-panel">
      <h3>{title.trim() || forecast.series_key}</h3>
      <FanChart forecast={forecast} />
      <SkillNote forecast={forecast} />
      <dl className="kv pairs" aria-label="backtest figures">
        <dt>Model</dt>
        <dd>{forecast.model}</dd>
        <dt>Origin</dt>
        <dd>{dateTime(forecast.origin)}</dd>
        <dt>MASE</dt>
        <dd>{num(b?.mase ?? null, 3)}</dd>
        <dt>sMAPE</dt>
        <dd>{pct(b?.smape ?? null)}</dd>
        <dt>Interval coverage</dt>
        <dd title="share of backtest actuals inside the central interval">{b?.coverage === null || b?.coverage === undefined ? "—" : pct(b.coverage * 100)}</dd>
        <dt>Backtest origins</dt>
        <dd>{b ? b.n_origins : "—"}</dd>
        {skill?.backtest_coverage !== null && skill?.backtest_coverage !== undefined && (
          <>
            <dt>Served interval coverage</dt>
            <dd>
              {pct(skill.backtest_coverage * 100)}
              {skill.interval_scale > 1 ? ` (widened ×${num(skill.interval_scale, 2)})` : ""}
            </dd>
          </>
        )}
      </dl>
      <button type="button" className="link" onClick={() => setOpen(!open)}>
        {open ? "hide model versions" : "model versions"}
      </button>
      {open && <BacktestDetails series={forecast.series_key} />}
    </div>
  );
}

/**
 * Queue the forecast job of the chosen kind now (``POST /forecasts/refresh``; editors) and follow it
 * over ``/ws/jobs``; ``onDone`` reloads the list when it ends. The scheduled job does the same.
 */
function BuildNow({ kind, onDone }: { kind: "price" | "demand"; onDone: () => void }) {
  const { api, auth, baseUrl, WebSocketImpl } = useServices();
  const [jobId, setJobId] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const socketUrl = useCallback(
    async (id: string, after: number) => {
      const token = await auth.token();
      if (!token) throw new Error("signed out");
      return jobSocket(baseUrl, id, token, after);
    },
    [auth, baseUrl],
  );
  const progress = useJobProgress(jobId, { url: socketUrl, WebSocketImpl, onTerminal: onDone });
  const start = async () => {
    setError(null);
    try {
      const job = unwrap(await api.POST("/forecasts/refresh", { body: { kind, full_refit: false } }));
      setJobId(job.job_id);
    } catch (err) {
      setError(messageOf(err));
    }
  };
  const running = jobId !== null && !progress.terminal;
  return (
    <div className="build-now">
      <button type="button" className="secondary" disabled={running} onClick={() => void start()}>
        {running ? "Building forecasts…" : `Build ${kind} forecasts now`}
      </button>
      {jobId && (
        <span className="muted" role="status" aria-label="forecast job">
          {progress.status ?? "queued"}
          {progress.progress?.message ? `: ${progress.progress.message}` : ""}
          {progress.terminal && progress.statusMessage ? ` (${progress.statusMessage})` : ""}
        </span>
      )}
      <ErrorBanner message={error} />
    </div>
  );
}

export function ForecastsPage() {
  const { api } = useServices();
  const [params, setParams] = useQueryParams();
  const gpu = params.get("gpu") ?? "";
  const kind = (params.get("kind") === "demand" ? "demand" : "price") as "price" | "demand";
  const forecasts = useAsync(
    async () =>
      unwrap(await api.GET("/forecasts", { params: { query: { kind, ...(gpu && kind === "price" ? { gpu_model: gpu } : {}), limit: 12 } } })),
    [gpu, kind],
  );
  const gpus = useAsync(async () => unwrap(await api.GET("/gpus", {})), []);
  return (
    <section>
      <h1>Forecasts</h1>
      <div className="filters" aria-label="forecast filters">
        <label>
          Kind
          <select value={kind} onChange={(e) => setParams({ kind: e.target.value, gpu })}>
            <option value="price">prices</option>
            <option value="demand">demand</option>
          </select>
        </label>
        {kind === "price" && (
          <label>
            GPU model
            <select value={gpu} onChange={(e) => setParams({ kind, gpu: e.target.value })}>
              <option value="">any</option>
              {(gpus.data?.items ?? []).map((g) => (
                <option key={g.name} value={g.name}>
                  {g.name}
                </option>
              ))}
            </select>
          </label>
        )}
        <BuildNow kind={kind} onDone={forecasts.reload} />
      </div>
      <ErrorBanner message={forecasts.error} />
      {forecasts.data && forecasts.data.items.length === 0 && (
        <p className="muted">
          No stored forecasts match. The scheduled forecast job builds them for every series with at least a day of hourly
          history; the button above runs it now.
        </p>
      )}
      <div className="chart-grid">
        {(forecasts.data?.items ?? []).map((f) => (
          <ForecastCard key={f.series_key} forecast={f} />
        ))}
      </div>
      {forecasts.data && forecasts.data.total > forecasts.data.items.length && (
        <p className="muted">
          Showing {forecasts.data.items.length} of {forecasts.data.total}; narrow by GPU model.
        </p>
      )}
    </section>
  );
}
