/**
 * Price history as chart rows. ``GET /prices/history`` answers one series per offer in USD per
 * instance-hour; a GPU model has dozens of offers, so the chart shows one line per provider, region
 * and market: the cheapest offer's close per GPU-hour in each bucket (what a buyer would pay).
 */
import type { components } from "../api/schema";

export type HistorySeries = components["schemas"]["SeriesOut"];

export interface Line {
  key: string;
  label: string;
  spot: boolean;
}

export interface ChartData {
  lines: Line[];
  /** One row per time (ms since epoch), with a value per line key where that line has a point. */
  rows: Record<string, number>[];
}

export function groupKey(s: Pick<HistorySeries, "provider" | "region" | "spot">): string {
  return `${s.provider}/${s.region || "-"}/${s.spot ? "spot" : "on-demand"}`;
}

/** Per GPU-hour lines, cheapest per group and time; at most ``maxLines`` lines, cheapest first. */
export function gpuHourLines(series: HistorySeries[], maxLines = 10): ChartData {
  const byTime = new Map<number, Map<string, number>>();
  const lowest = new Map<string, { line: Line; min: number }>();
  for (const s of series) {
    const key = groupKey(s);
    const perGpu = Math.max(1, s.gpu_count);
    for (const p of s.points) {
      const t = Date.parse(p.t);
      const value = p.close / perGpu;
      if (!Number.isFinite(t) || !Number.isFinite(value)) continue;
      const row = byTime.get(t) ?? new Map<string, number>();
      const prev = row.get(key);
      if (prev === undefined || value < prev) row.set(key, value);
      byTime.set(t, row);
      const seen = lowest.get(key);
      if (!seen) lowest.set(key, { line: { key, label: `${s.provider} ${s.region || ""} ${s.spot ? "spot" : "on-demand"}`.replace(/\s+/g, " "), spot: s.spot }, min: value });
      else if (value < seen.min) seen.min = value;
    }
  }
  const lines = [...lowest.values()].sort((a, b) => a.min - b.min).slice(0, maxLines).map((x) => x.line);
  const keep = new Set(lines.map((l) => l.key));
  const rows = [...byTime.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([t, values]) => {
      const row: Record<string, number> = { t };
      for (const [k, v] of values) if (keep.has(k)) row[k] = v;
      return row;
    });
  return { lines, rows };
}

/** The newest value of each line (what the chart's last point of that line shows), in line order. */
export function latestPerLine(data: ChartData): { line: Line; value: number; t: number }[] {
  const out: { line: Line; value: number; t: number }[] = [];
  for (const line of data.lines) {
    for (let i = data.rows.length - 1; i >= 0; i--) {
      const row = data.rows[i];
      const value = row?.[line.key];
      if (row && value !== undefined) {
        out.push({ line, value, t: row.t ?? Number.NaN });
        break;
      }
    }
  }
  return out;
}

/** One offer's candles as rows: close, low and high per instance-hour and per GPU-hour. */
export function offerRows(series: HistorySeries): Record<string, number>[] {
  const perGpu = Math.max(1, series.gpu_count);
  return series.points
    .map((p) => ({ t: Date.parse(p.t), close: p.close, low: p.low, high: p.high, perGpu: p.close / perGpu }))
    .filter((r) => Number.isFinite(r.t))
    .sort((a, b) => a.t - b.t);
}

/** A live price change (``/ws/prices``) folded into the series it belongs to, as a new last point. */
export interface PriceChange {
  id?: number;
  type?: string;
  offer_key: string;
  provider: string;
  region: string;
  gpu_model: string;
  old_price_per_hour: number | null;
  new_price_per_hour: number;
  change_pct: number | null;
  observed_at: string;
}

export function applyChange(series: HistorySeries[], change: PriceChange): HistorySeries[] {
  let hit = false;
  const next = series.map((s) => {
    if (s.offer_key !== change.offer_key) return s;
    hit = true;
    const price = change.new_price_per_hour;
    return { ...s, points: [...s.points, { t: change.observed_at, open: price, high: price, low: price, close: price, ticks: 1 }] };
  });
  return hit ? next : series;
}
