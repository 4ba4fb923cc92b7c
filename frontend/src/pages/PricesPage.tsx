/**
 * Price history: one GPU model across providers and regions (per GPU-hour, spot and on-demand), or
 * one offer's candles; live changes over ``/ws/prices``; how fresh each provider's prices are.
 * The view lives in the URL: ``#/prices?gpu=H100+SXM&market=spot&days=7`` or ``#/prices?offer=<key>``.
 */
import { useCallback, useEffect, useState } from "react";
import { CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import { unwrap } from "../api/errors";
import { applyChange, gpuHourLines, latestPerLine, offerRows, type HistorySeries, type PriceChange } from "../charts/priceSeries";
import { colorAt, shortTime } from "../charts/theme";
import { ErrorBanner } from "../components/common";
import { ProviderFreshness } from "../components/ProviderFreshness";
import { age, money } from "../format";
import { useAsync } from "../hooks/useAsync";
import { usePriceStream } from "../hooks/usePriceStream";
import { href, useQueryParams } from "../router";
import { useServices } from "../services";

const RANGES: { days: string; label: string }[] = [
  { days: "1", label: "24 hours" },
  { days: "7", label: "7 days" },
  { days: "30", label: "30 days" },
  { days: "90", label: "90 days" },
];

type Market = "any" | "spot" | "on_demand";

interface Loaded {
  series: HistorySeries[];
}

/**
 * The window's end: now, unless the newest stored price is older than the window (a snapshot, or
 * ingestion stopped); then the window ends just after that price, and the page says so.
 */
export function windowEnd(nowMs: number, newestIso: string | null | undefined, days: number): number {
  const newest = newestIso ? Date.parse(newestIso) : NaN;
  if (!Number.isFinite(newest) || newest > nowMs - days * 86400_000) return nowMs;
  return Math.min(nowMs, newest + 3600_000);
}

/** ``value`` once it has stopped changing for ``ms`` (one refresh brings a burst of changes). */
function useSettled<T>(value: T, ms: number): T {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(timer);
  }, [value, ms]);
  return settled;
}

function useHistory(query: { gpu: string; offer: string; market: Market; days: number; endMs: number | null }) {
  const { api } = useServices();
  return useAsync<Loaded>(async () => {
    if ((!query.gpu && !query.offer) || query.endMs === null) return { series: [] };
    const end = new Date(query.endMs);
    const start = new Date(end.getTime() - query.days * 86400_000);
    const spot = query.market === "any" ? undefined : query.market === "spot";
    const ask = async (bucket: "raw" | "hour") =>
      unwrap(
        await api.GET("/prices/history", {
          params: {
            query: {
              ...(query.offer ? { offer_key: query.offer } : { gpu_model: query.gpu }),
              ...(spot === undefined || query.offer ? {} : { spot }),
              start: start.toISOString(),
              end: end.toISOString(),
              bucket,
              max_offers: 200,
            },
          },
        }),
      ).series;
    const series = await ask(query.days <= 2 ? "raw" : "hour");
    // Ticks not yet rolled up into the hourly table (a fresh import) still show within the raw span.
    if (query.days > 2 && query.days <= 7 && series.every((s) => s.points.length === 0)) return { series: await ask("raw") };
    return { series };
  }, [query.gpu, query.offer, query.market, query.days, query.endMs]);
}

function LatestPrices({ data }: { data: ReturnType<typeof gpuHourLines> }) {
  const latest = latestPerLine(data);
  if (latest.length === 0) return null;
  return (
    <div className="scroll">
      <table className="data compact latest" aria-label="latest prices">
        <thead>
          <tr>
            <th>Line</th>
            <th className="num">$/GPU-hour</th>
            <th>As of</th>
          </tr>
        </thead>
        <tbody>
          {latest.map(({ line, value, t }) => (
            <tr key={line.key}>
              <td className="wrap">{line.label}</td>
              <td className="num">{money(value, true)}</td>
              <td>{shortTime(t)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function GpuChart({ series }: { series: HistorySeries[] }) {
  const data = gpuHourLines(series);
  const { lines, rows } = data;
  if (rows.length === 0) return <p className="muted">No prices recorded in this range.</p>;
  return (
    <>
      <div className="chart" role="img" aria-label="price history per GPU-hour">
        <ResponsiveContainer width="100%" height="100%">
          <LineChart data={rows} margin={{ top: 8, right: 16, bottom: 4, left: 4 }}>
            <CartesianGrid strokeDasharray="3 3" stroke="#e3e6ec" />
            <XAxis dataKey="t" type="number" domain={["dataMin", "dataMax"]} scale="time" tickFormatter={shortTime} />
            <YAxis tickFormatter={(v: number) => `$${v.toFixed(2)}`} width={56} />
            <Tooltip labelFormatter={(t) => new Date(Number(t)).toLocaleString()} formatter={(v) => money(Number(v), true)} />
            <Legend wrapperStyle={{ fontSize: 12 }} />
            {lines.map((l, i) => (
              <Line key={l.key} dataKey={l.key} name={l.label} stroke={colorAt(i)} strokeDasharray={l.spot ? "5 3" : undefined}
                dot={rows.length < 30} connectNulls type="stepAfter" isAnimationActive={false} />
            ))}
          </LineChart>
        </ResponsiveContainer>
      </div>
      <LatestPrices data={data} />
    </>
  );
}

function OfferChart({ series }: { series: HistorySeries }) {
  const rows = offerRows(series);
  if (rows.length === 0) return <p className="muted">No prices recorded in this range.</p>;
  return (
    <div className="chart" role="img" aria-label="price history of one offer">
      <ResponsiveContainer width="100%" height="100%">
        <LineChart data={rows} margin={{ top: 8, right: 16, bottom: 4, left: 4 }}>
          <CartesianGrid strokeDasharray="3 3" stroke="#e3e6ec" />
          <XAxis dataKey="t" type="number" domain={["dataMin", "dataMax"]} scale="time" tickFormatter={shortTime} />
          <YAxis tickFormatter={(v: number) => `$${v.toFixed(2)}`} width={56} />
          <Tooltip labelFormatter={(t) => new Date(Number(t)).toLocaleString()} formatter={(v) => money(Number(v), true)} />
          <Legend wrapperStyle={{ fontSize: 12 }} />
          <Line dataKey="close" name="$/instance-hour" stroke={colorAt(0)} type="stepAfter" dot={rows.length < 30} isAnimationActive={false} />
          <Line dataKey="perGpu" name="$/GPU-hour" stroke={colorAt(1)} type="stepAfter" dot={rows.length < 30} isAnimationActive={false} />
        </LineChart>
      </ResponsiveContainer>
    </div>
  );
}

function LiveFeed({ changes, state }: { changes: PriceChange[]; state: string }) {
  return (
    <div className="chart-panel">
      <h3>
        Live price changes <span className={`conn conn-${state}`}>● {state}</span>
      </h3>
      {changes.length === 0 ? (
        <p className="muted">Waiting for price changes (they arrive when a provider refresh finds new prices).</p>
      ) : (
        <ul className="live-feed" aria-label="live price changes">
          {changes.map((c, i) => (
            <li key={`${c.id ?? i}-${c.offer_key}`} className={(c.change_pct ?? 0) < 0 ? "down" : "up"}>
              {c.provider} {c.region} {c.gpu_model}: {money(c.old_price_per_hour, true)} → {money(c.new_price_per_hour, true)}
              {c.change_pct !== null ? ` (${c.change_pct > 0 ? "+" : ""}${c.change_pct.toFixed(1)}%)` : ""} ·{" "}
              {age((Date.now() - Date.parse(c.observed_at)) / 1000)} ago
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function GpuSelect({ value, names, onChange }: { value: string; names: string[]; onChange: (v: string) => void }) {
  return (
    <label>
      GPU model
      <select value={value} onChange={(e) => onChange(e.target.value)} aria-label="GPU model">
        <option value="">choose…</option>
        {value && !names.includes(value) && <option value={value}>{value}</option>}
        {names.map((n) => (
          <option key={n} value={n}>
            {n}
          </option>
        ))}
      </select>
    </label>
  );
}

export function PricesPage() {
  const { api } = useServices();
  const [params, setParams] = useQueryParams();
  const gpus = useAsync(async () => unwrap(await api.GET("/gpus", {})), []);
  const names = (gpus.data?.items ?? []).map((g) => g.name).sort();
  const [now] = useState(() => Date.now());
  const offer = params.get("offer") ?? "";
  const gpu = params.get("gpu") ?? "";
  const market = (["spot", "on_demand"].includes(params.get("market") ?? "") ? params.get("market") : "any") as Market;
  const days = Number(params.get("days") ?? "7") || 7;
  const loadedGpus = gpus.data !== null || gpus.error !== null;
  const endMs = loadedGpus ? windowEnd(now, gpus.data?.newest_price_at, days) : null;
  const history = useHistory({ gpu, offer, market, days, endMs });
  const [live, setLive] = useState<HistorySeries[] | null>(null);
  const series = live ?? history.data?.series ?? [];
  const set = (patch: Record<string, string>) => {
    setLive(null);
    setParams({ gpu, offer, market: market === "any" ? "" : market, days: String(days), ...patch });
  };
  // A change of an offer the chart does not show (or one that arrives before the history) leaves the
  // chart on the loaded history: ``live`` only takes over once it differs from it.
  const onChange = useCallback(
    (c: PriceChange) =>
      setLive((prev) => {
        const base = prev ?? history.data?.series;
        if (!base) return prev;
        const next = applyChange(base, c);
        return next === base ? prev : next;
      }),
    [history.data],
  );
  const stream = usePriceStream({ gpuModel: offer ? series[0]?.gpu_model : gpu || undefined }, onChange);
  const one = offer ? series[0] : undefined;
  const freshnessKey = useSettled(stream.changes[0]?.id ?? stream.changes.length, 400);

  return (
    <section>
      <h1>Prices</h1>
      <div className="filters" aria-label="price filters">
        {offer ? (
          <p>
            Offer <code>{offer}</code>{" "}
            <a href={href("/prices", { gpu: one?.gpu_model ?? "" })}>all offers of this GPU</a>
          </p>
        ) : (
          <>
            <GpuSelect value={gpu} names={names} onChange={(v) => set({ gpu: v })} />
            <label>
              Market
              <select value={market} onChange={(e) => set({ market: e.target.value === "any" ? "" : e.target.value })}>
                <option value="any">spot and on-demand</option>
                <option value="on_demand">on-demand</option>
                <option value="spot">spot</option>
              </select>
            </label>
          </>
        )}
        <label>
          Range
          <select value={String(days)} onChange={(e) => set({ days: e.target.value })}>
            {RANGES.map((r) => (
              <option key={r.days} value={r.days}>
                {r.label}
              </option>
            ))}
          </select>
        </label>
      </div>
      <ErrorBanner message={history.error} />
      {endMs !== null && endMs < now - 3600_000 && (
        <p className="stale-banner" role="status">
          The newest stored price is {age((now - endMs) / 1000)} old: the chart shows the {days} days up to it.
        </p>
      )}
      {!gpu && !offer && <p className="muted">Choose a GPU model to compare its price across providers and regions.</p>}
      {(gpu || offer) && (
        <div className="chart-panel">
          <h3>
            {one
              ? `${one.provider} ${one.region} ${one.instance_type} (${one.gpu_count} × ${one.gpu_model}${one.spot ? ", spot" : ""})`
              : `${gpu}: cheapest $/GPU-hour per provider, region and market`}
          </h3>
          {history.loading && !history.data ? <p className="muted">Loading…</p> : one ? <OfferChart series={one} /> : <GpuChart series={series} />}
          {!one && <p className="legend-note">Dashed lines are spot prices. {series.length} offers.</p>}
        </div>
      )}
      <LiveFeed changes={stream.changes} state={stream.state} />
      <ProviderFreshness refreshKey={freshnessKey} />
    </section>
  );
}
