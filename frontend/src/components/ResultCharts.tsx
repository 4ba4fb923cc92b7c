/** Result charts: savings against each baseline, the allocation by provider/region/GPU, the Pareto fronts. */
import { useState } from "react";
import {
  Bar, BarChart, CartesianGrid, Cell, LabelList, Legend, ResponsiveContainer, Scatter, ScatterChart, Tooltip, XAxis, YAxis,
} from "recharts";
import type { Allocation, OptimizationResult } from "../api/types";
import { colorAt } from "../charts/theme";
import { dollarTick, money, num, pct } from "../format";

export const BASELINE_LABELS: Record<string, string> = {
  single_provider_on_demand: "Cheapest single provider, on-demand",
  greedy_cheapest: "Greedy cheapest-first",
  skypilot_rule: "Cheapest instance that fits (SkyPilot's rule)",
};

export function savingsBars(result: OptimizationResult): { name: string; cost: number; optimized: boolean; saved: number | null }[] {
  const cost = result.totals?.cost_per_hour;
  if (cost === undefined) return [];
  const rows: { name: string; cost: number; optimized: boolean; saved: number | null }[] = [{ name: "CloudArb", cost, optimized: true, saved: null }];
  for (const s of result.savings ?? []) {
    if (s.baseline_cost_per_hour === null) continue;
    rows.push({ name: BASELINE_LABELS[s.baseline] ?? s.baseline, cost: s.baseline_cost_per_hour, optimized: false, saved: s.savings_pct });
  }
  return rows;
}

export function SavingsChart({ result }: { result: OptimizationResult }) {
  const rows = savingsBars(result);
  if (rows.length < 2) return null;
  return (
    <div className="chart-panel">
      <h3>Cost per hour against each baseline</h3>
      <div className="chart small" role="img" aria-label="savings against baselines">
        <ResponsiveContainer width="100%" height="100%">
          <BarChart data={rows} layout="vertical" margin={{ top: 4, right: 70, bottom: 4, left: 8 }}>
            <CartesianGrid strokeDasharray="3 3" stroke="#e3e6ec" />
            <XAxis type="number" tickFormatter={dollarTick} />
            <YAxis type="category" dataKey="name" width={150} fontSize={11} />
            <Tooltip formatter={(v) => `${money(Number(v))}/hour`} />
            <Bar dataKey="cost" name="$/hour" isAnimationActive={false}>
              {rows.map((r, i) => (
                <Cell key={r.name} fill={r.optimized ? colorAt(2) : colorAt(i === 1 ? 0 : 4)} />
              ))}
              <LabelList dataKey="saved" position="right" formatter={(v: unknown) => (typeof v === "number" ? `saves ${pct(v)}` : "")} fontSize={11} />
            </Bar>
          </BarChart>
        </ResponsiveContainer>
      </div>
    </div>
  );
}

type Dimension = "provider" | "region" | "gpu_model";

export function allocationBy(lines: Allocation[], dim: Dimension): { name: string; cost: number; gpus: number }[] {
  const acc = new Map<string, { name: string; cost: number; gpus: number }>();
  for (const l of lines) {
    const name = dim === "region" ? `${l.provider} ${l.region || "—"}` : l[dim];
    const row = acc.get(name) ?? { name, cost: 0, gpus: 0 };
    row.cost += l.hourly_cost;
    row.gpus += l.gpus;
    acc.set(name, row);
  }
  return [...acc.values()].sort((a, b) => b.cost - a.cost);
}

export function AllocationChart({ lines }: { lines: Allocation[] }) {
  const [dim, setDim] = useState<Dimension>("provider");
  if (lines.length === 0) return null;
  const rows = allocationBy(lines, dim);
  return (
    <div className="chart-panel">
      <h3>
        Allocation by{" "}
        <select value={dim} onChange={(e) => setDim(e.target.value as Dimension)} aria-label="allocation dimension">
          <option value="provider">provider</option>
          <option value="region">region</option>
          <option value="gpu_model">GPU model</option>
        </select>
      </h3>
      <div className="chart small" role="img" aria-label="allocation chart">
        <ResponsiveContainer width="100%" height="100%">
          <BarChart data={rows} margin={{ top: 4, right: 12, bottom: 4, left: 4 }}>
            <CartesianGrid strokeDasharray="3 3" stroke="#e3e6ec" />
            <XAxis dataKey="name" fontSize={11} />
            <YAxis yAxisId="cost" tickFormatter={dollarTick} width={52} />
            <YAxis yAxisId="gpus" orientation="right" width={36} allowDecimals={false} />
            <Tooltip formatter={(v, n) => (n === "$/hour" ? money(Number(v)) : String(v))} />
            <Legend wrapperStyle={{ fontSize: 12 }} />
            <Bar yAxisId="cost" dataKey="cost" name="$/hour" fill={colorAt(0)} isAnimationActive={false} />
            <Bar yAxisId="gpus" dataKey="gpus" name="GPUs" fill={colorAt(1)} isAnimationActive={false} />
          </BarChart>
        </ResponsiveContainer>
      </div>
    </div>
  );
}

export interface FrontPoint {
  cost_per_hour: number;
  risk_per_hour: number;
  performance: number;
  expected_interruption_cost_per_hour: number;
  cvar_cost_per_hour: number;
  gap: number;
}

export type FrontKind = "cost_risk" | "cost_performance";

export interface Fronts {
  cost_risk?: FrontPoint[];
  cost_performance?: FrontPoint[];
}

/** The Pareto fronts; a click picks a point, and ``onPick`` re-solves there. */
export function ParetoChart({ fronts, current, onPick, busy }: {
  fronts: Fronts;
  current?: { cost: number; risk: number; performance: number };
  onPick: (kind: FrontKind, point: FrontPoint) => void;
  busy?: boolean;
}) {
  const kinds = (["cost_risk", "cost_performance"] as FrontKind[]).filter((k) => (fronts[k]?.length ?? 0) > 0);
  const [kind, setKind] = useState<FrontKind>(kinds[0] ?? "cost_risk");
  const [picked, setPicked] = useState<FrontPoint | null>(null);
  if (kinds.length === 0) return null;
  const points = fronts[kind] ?? [];
  const yKey = kind === "cost_risk" ? "risk_per_hour" : "performance";
  const yLabel = kind === "cost_risk" ? "risk $/hour" : "performance (A100-eq.)";
  const here = current ? [{ cost_per_hour: current.cost, [yKey]: kind === "cost_risk" ? current.risk : current.performance }] : [];
  return (
    <div className="chart-panel">
      <h3>
        Pareto front{" "}
        <select value={kind} onChange={(e) => { setKind(e.target.value as FrontKind); setPicked(null); }} aria-label="Pareto front">
          {kinds.map((k) => (
            <option key={k} value={k}>
              {k === "cost_risk" ? "cost vs risk" : "cost vs performance"}
            </option>
          ))}
        </select>
      </h3>
      <div className="chart small" role="img" aria-label="Pareto front chart">
        <ResponsiveContainer width="100%" height="100%">
          <ScatterChart margin={{ top: 8, right: 16, bottom: 16, left: 4 }}>
            <CartesianGrid strokeDasharray="3 3" stroke="#e3e6ec" />
            <XAxis type="number" dataKey="cost_per_hour" name="cost $/hour" tickFormatter={(v: number) => `$${num(v, 1)}`} domain={["auto", "auto"]}
              label={{ value: "cost $/hour", position: "insideBottom", offset: -8, fontSize: 11 }} />
            <YAxis type="number" dataKey={yKey} name={yLabel} width={56} domain={["auto", "auto"]} tickFormatter={(v: number) => num(v, 2)} />
            <Tooltip cursor={{ strokeDasharray: "3 3" }} formatter={(v) => num(Number(v), 3)} />
            <Scatter name="front" data={points} fill={colorAt(0)} line shape="circle" isAnimationActive={false}
              onClick={(p: unknown) => {
                const payload = (p as { payload?: FrontPoint }).payload ?? (p as FrontPoint);
                setPicked(payload);
              }}>
              {points.map((p) => (
                <Cell key={`${p.cost_per_hour}-${p[yKey]}`} fill={picked === p ? colorAt(5) : colorAt(0)} cursor="pointer" />
              ))}
            </Scatter>
            {here.length > 0 && <Scatter name="this result" data={here} fill={colorAt(2)} shape="star" isAnimationActive={false} />}
          </ScatterChart>
        </ResponsiveContainer>
      </div>
      <div className="button-row">
        <label>
          Point
          <select
            aria-label="Pareto point"
            value={picked ? String(points.indexOf(picked)) : ""}
            onChange={(e) => setPicked(points[Number(e.target.value)] ?? null)}
          >
            <option value="">pick a point…</option>
            {points.map((p, i) => (
              <option key={i} value={i}>
                {money(p.cost_per_hour)}/h · {kind === "cost_risk" ? `risk ${money(p.risk_per_hour)}/h` : `performance ${num(p.performance, 1)}`}
              </option>
            ))}
          </select>
        </label>
        <button type="button" disabled={!picked || busy} className="align-end" onClick={() => picked && onPick(kind, picked)}>
          {busy ? "Submitting…" : "Re-solve at this point"}
        </button>
      </div>
      <p className="pick-hint">
        Click a point (or choose it above), then re-solve: the new request caps the cost at that point's and
        {kind === "cost_risk" ? " minimizes risk" : " maximizes performance"} under it.
      </p>
    </div>
  );
}
