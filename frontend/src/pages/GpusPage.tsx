/** The GPU catalog (``GET /gpus``): every model the identity table knows, its data sheet and cheapest prices. */
import { Bar, BarChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import { unwrap } from "../api/errors";
import type { components } from "../api/schema";
import { colorAt } from "../charts/theme";
import { ErrorBanner } from "../components/common";
import { dollarTick, money, num } from "../format";
import { useAsync } from "../hooks/useAsync";
import { href, useQueryParams } from "../router";
import { useServices } from "../services";

type Gpu = components["schemas"]["GpuList"]["items"][number];

/** The cheapest on-demand and spot $/GPU-hour of each priced model, cheapest on-demand first. */
export function priceBars(gpus: Gpu[], limit = 20): { name: string; on_demand?: number; spot?: number }[] {
  return gpus
    .filter((g) => g.on_demand || g.spot)
    .map((g) => ({ name: g.name, on_demand: g.on_demand?.price_per_gpu_hour, spot: g.spot?.price_per_gpu_hour }))
    .sort((a, b) => (a.on_demand ?? a.spot ?? Infinity) - (b.on_demand ?? b.spot ?? Infinity))
    .slice(0, limit);
}

export function GpusPage() {
  const { api } = useServices();
  const [params, setParams] = useQueryParams();
  const all = params.get("all") === "1";
  const gpus = useAsync(async () => unwrap(await api.GET("/gpus", { params: { query: { all } } })), [all]);
  const items = gpus.data?.items ?? [];
  const bars = priceBars(items);
  return (
    <section>
      <h1>GPU catalog</h1>
      <label className="check">
        <input type="checkbox" checked={all} onChange={(e) => setParams(e.target.checked ? { all: "1" } : {})} />
        Include models without current offers
      </label>
      <ErrorBanner message={gpus.error} />
      {gpus.data?.stale_prices && <p className="stale-banner">Stale prices: {gpus.data.stale_prices}</p>}
      {bars.length > 0 && (
        <div className="chart-panel">
          <h3>Cheapest $/GPU-hour per model</h3>
          <div className="chart" role="img" aria-label="cheapest price per GPU model">
            <ResponsiveContainer width="100%" height="100%">
              <BarChart data={bars} margin={{ top: 8, right: 12, bottom: 60, left: 4 }}>
                <CartesianGrid strokeDasharray="3 3" stroke="#e3e6ec" />
                <XAxis dataKey="name" angle={-40} textAnchor="end" interval={0} fontSize={11} />
                <YAxis tickFormatter={dollarTick} width={48} />
                <Tooltip formatter={(v) => money(Number(v), true)} />
                <Legend verticalAlign="top" wrapperStyle={{ fontSize: 12 }} />
                <Bar dataKey="on_demand" name="on-demand" fill={colorAt(0)} isAnimationActive={false} />
                <Bar dataKey="spot" name="spot" fill={colorAt(1)} isAnimationActive={false} />
              </BarChart>
            </ResponsiveContainer>
          </div>
        </div>
      )}
      {gpus.data && (
        <div className="scroll">
          <table className="data" aria-label="GPU catalog">
            <thead>
              <tr>
                <th>Model</th>
                <th>Vendor</th>
                <th>Architecture</th>
                <th className="num">Memory</th>
                <th>Form factor</th>
                <th className="num">Offers</th>
                <th>Providers</th>
                <th className="num">On-demand $/GPU-h</th>
                <th className="num">Spot $/GPU-h</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {items.map((g) => (
                <tr key={g.name}>
                  <td title={g.aliases.join(", ")}>{g.name}</td>
                  <td>{g.vendor}</td>
                  <td>{g.architecture}</td>
                  <td className="num">
                    {num(g.memory_gb, 0)} GB {g.memory_type}
                  </td>
                  <td>{g.form_factor}</td>
                  <td className="num">{g.offers}</td>
                  <td>{g.providers.join(", ") || "—"}</td>
                  <td className="num">{g.on_demand ? `${money(g.on_demand.price_per_gpu_hour, true)} (${g.on_demand.provider})` : "—"}</td>
                  <td className="num">{g.spot ? `${money(g.spot.price_per_gpu_hour, true)} (${g.spot.provider})` : "—"}</td>
                  <td>
                    {g.offers > 0 && (
                      <>
                        <a href={href("/prices", { gpu: g.name })}>history</a> · <a href={href("/offers", { gpu: g.name })}>offers</a>
                      </>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {gpus.loading && !gpus.data && <p className="muted">Loading…</p>}
    </section>
  );
}
