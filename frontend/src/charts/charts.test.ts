import { describe, expect, it } from "vitest";
import { uuidFromBytes, newId } from "../ids";
import { bandsOf, fanRows } from "./fan";
import { applyChange, gpuHourLines, offerRows, type HistorySeries } from "./priceSeries";

function series(key: string, provider: string, spot: boolean, gpuCount: number, closes: [string, number][]): HistorySeries {
  return {
    offer_key: key, provider, region: "us-east-1", instance_type: `it-${key}`, gpu_model: "H100 SXM", gpu_count: gpuCount, spot,
    points: closes.map(([t, c]) => ({ t, open: c, high: c, low: c, close: c, ticks: 1 })),
  };
}

describe("gpuHourLines", () => {
  it("keeps the cheapest per-GPU price of each provider/region/market per time, cheapest line first", () => {
    const data = gpuHourLines([
      series("a", "aws", false, 8, [["2026-01-01T00:00:00Z", 80], ["2026-01-01T01:00:00Z", 72]]),
      series("b", "aws", false, 1, [["2026-01-01T00:00:00Z", 9]]),
      series("c", "vast", true, 1, [["2026-01-01T01:00:00Z", 2.5]]),
    ]);
    expect(data.lines.map((l) => l.key)).toEqual(["vast/us-east-1/spot", "aws/us-east-1/on-demand"]);
    expect(data.rows).toEqual([
      { t: Date.parse("2026-01-01T00:00:00Z"), "aws/us-east-1/on-demand": 9 },
      { t: Date.parse("2026-01-01T01:00:00Z"), "aws/us-east-1/on-demand": 9, "vast/us-east-1/spot": 2.5 },
    ]);
  });

  it("limits the number of lines", () => {
    const many = Array.from({ length: 15 }, (_, i) => ({ ...series(`k${i}`, `p${i}`, false, 1, [["2026-01-01T00:00:00Z", i + 1]]) }));
    const data = gpuHourLines(many, 4);
    expect(data.lines.map((l) => l.key)).toEqual(["p0/us-east-1/on-demand", "p1/us-east-1/on-demand", "p2/us-east-1/on-demand", "p3/us-east-1/on-demand"]);
    expect(Object.keys(data.rows[0]!)).toHaveLength(5);
  });

  it("folds a live change into its offer's series and ignores other offers", () => {
    const s = [series("a", "aws", false, 8, [["2026-01-01T00:00:00Z", 80]])];
    const change = { offer_key: "a", provider: "aws", region: "us-east-1", gpu_model: "H100 SXM", old_price_per_hour: 80, new_price_per_hour: 64, change_pct: -20, observed_at: "2026-01-01T02:00:00Z" };
    const next = applyChange(s, change);
    expect(offerRows(next[0]!).map((r) => [r.close, r.perGpu])).toEqual([[80, 10], [64, 8]]);
    expect(applyChange(s, { ...change, offer_key: "zzz" })).toBe(s);
  });
});

describe("fan chart rows", () => {
  it("pairs symmetric quantiles into nested bands, widest first", () => {
    expect(bandsOf(["0.1", "0.25", "0.5", "0.75", "0.9", "0.95"]).map((b) => [b.lo, b.hi, b.label])).toEqual([
      ["0.1", "0.9", "80% interval"],
      ["0.25", "0.75", "50% interval"],
    ]);
  });

  it("builds one row per step with ranges, median and point", () => {
    const fan = fanRows({
      timestamps: ["2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z"],
      point: [2, 2.1],
      quantiles: { "0.1": [1.5, 1.4], "0.5": [2, 2.05], "0.9": [2.5, 2.9] },
    });
    expect(fan.median).toBe("0.5");
    expect(fan.rows[1]).toEqual({ t: Date.parse("2026-01-01T01:00:00Z"), point: 2.1, ["band_0.1"]: [1.4, 2.9], median: 2.05 });
  });
});

describe("ids", () => {
  it("builds RFC 4122 v4 UUIDs from random bytes where randomUUID is missing (plain HTTP)", () => {
    const id = uuidFromBytes(new Uint8Array(16).fill(255));
    expect(id).toBe("ffffffff-ffff-4fff-bfff-ffffffffffff");
    const noSecureContext = { getRandomValues: <T extends ArrayBufferView | null>(a: T) => { new Uint8Array((a as unknown as Uint8Array).buffer).fill(7); return a; } };
    expect(newId(noSecureContext as unknown as Crypto)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(newId({ getRandomValues: () => { throw new Error("unused"); }, randomUUID: () => "native" } as unknown as Crypto)).toBe("native");
  });
});

describe("spend over the month", () => {
  it("asks about each UTC day of the month so far and cumulates against the budget's pace", async () => {
    const { cumulativeSpend, monthDays } = await import("./spend");
    const days = monthDays(new Date("2026-02-03T15:00:00Z"));
    expect(days.map((d) => d.toISOString().slice(0, 10))).toEqual(["2026-02-01", "2026-02-02", "2026-02-03", "2026-02-04"]);
    const rows = cumulativeSpend(days, [10, 0, 5], 280);
    expect(rows.map((r) => [r.day, r.cumulative, r.pace])).toEqual([[10, 10, 10], [0, 10, 20], [5, 15, 30]]);
    expect(cumulativeSpend(days, [1], null)[0]?.pace).toBeUndefined();
  });
});
