/**
 * A forecast's stored quantile paths as fan-chart rows: nested central intervals (e.g. 10-90 and
 * 25-75 percent) as [low, high] ranges, the median and the point forecast per time step.
 */

export interface Band {
  key: string;
  label: string;
  lo: string;
  hi: string;
}

export interface FanData {
  bands: Band[];
  median: string | null;
  rows: Record<string, number | [number, number]>[];
}

/** Pair each level below one half with its mirror above (0.1 with 0.9); widest band first. */
export function bandsOf(levels: string[]): Band[] {
  const byValue = new Map(levels.map((l) => [Number(l), l]));
  const out: Band[] = [];
  for (const [v, lo] of [...byValue.entries()].sort((a, b) => a[0] - b[0])) {
    if (v >= 0.5) continue;
    const hi = [...byValue.entries()].find(([w]) => Math.abs(w - (1 - v)) < 1e-6)?.[1];
    if (hi) out.push({ key: `band_${lo}`, label: `${Math.round((1 - 2 * v) * 100)}% interval`, lo, hi });
  }
  return out;
}

function isNum(x: number | undefined): x is number {
  return typeof x === "number" && Number.isFinite(x);
}

export function fanRows(forecast: { timestamps: string[]; point: number[]; quantiles: Record<string, number[]> }): FanData {
  const levels = Object.keys(forecast.quantiles);
  const bands = bandsOf(levels);
  const median = levels.find((l) => Math.abs(Number(l) - 0.5) < 1e-6) ?? null;
  const rows = forecast.timestamps.map((ts, i) => {
    const row: Record<string, number | [number, number]> = { t: Date.parse(ts) };
    const point = forecast.point[i];
    if (isNum(point)) row.point = point;
    for (const b of bands) {
      const lo = forecast.quantiles[b.lo]?.[i];
      const hi = forecast.quantiles[b.hi]?.[i];
      if (isNum(lo) && isNum(hi)) row[b.key] = [lo, hi];
    }
    if (median) {
      const m = forecast.quantiles[median]?.[i];
      if (isNum(m)) row.median = m;
    }
    return row;
  });
  return { bands, median, rows };
}
