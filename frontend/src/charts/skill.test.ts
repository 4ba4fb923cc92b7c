import { describe, expect, it } from "vitest";
import { latestPerLine, gpuHourLines } from "./priceSeries";
import { skillStatement, stepRanges } from "./skill";

const step = (n: number, served: string) => ({
  step: n, served, candidate: "lag_ridge", wins: 5, losses: 0, p_value: 0.03, candidate_mae: 0.1, last_value_mae: 0.3,
});

describe("skill statement", () => {
  it("writes served steps as ranges", () => {
    expect(stepRanges([7, 1, 2, 3, 5, 8, 2])).toBe("1–3, 5, 7–8");
    expect(stepRanges([])).toBe("");
  });

  it("names the model, its steps and the evidence where a model beat last value", () => {
    const s = skillStatement({
      model: "lag_ridge", fallback: false, fallback_reason: null,
      skill: { has_skill: true, reason: "beats last value out of sample at steps 1:lag_ridge, 2:lag_ridge", rule: "wins at >= 70% of origins",
        n_origins: 5, steps: [step(1, "lag_ridge"), step(2, "lag_ridge"), step(3, "last_value")], backtest_coverage: 0.8, interval_scale: 1 },
    });
    expect(s?.verdict).toBe("skill");
    expect(s?.headline).toBe("Beats last value out of sample: lag_ridge serves 2 of 3 steps (1–2); last value serves the other steps.");
    expect(s?.detail).toBe("Judged on 5 backtest origins.");
    expect(s?.rule).toBe("wins at >= 70% of origins");
  });

  it("says 'no skill over last value' with the closest try's figures", () => {
    const s = skillStatement({
      model: "last_value", fallback: true, fallback_reason: "no skill over last value: best try lag_ridge at step 2 won 4, lost 1",
      skill: { has_skill: false, reason: "no skill over last value: best try lag_ridge at step 2 won 4, lost 1", rule: "r",
        n_origins: 1, steps: [step(1, "last_value")], backtest_coverage: null, interval_scale: 1 },
    });
    expect(s?.verdict).toBe("no-skill");
    expect(s?.headline).toBe("No skill over last value: last value is served at every step.");
    expect(s?.detail).toBe("Best try lag_ridge at step 2 won 4, lost 1. Judged on 1 backtest origin.");
  });

  it("falls back to the fallback reason without a skill check, and says nothing for a selected demand model", () => {
    expect(skillStatement({ model: "last_value", fallback: true, fallback_reason: "flat series", skill: null }))
      .toEqual({ verdict: "fallback", headline: "Fallback: last_value is served.", detail: "flat series", rule: null });
    expect(skillStatement({ model: "ets", fallback: false, fallback_reason: null, skill: null })).toBeNull();
  });
});

describe("latest price per line", () => {
  it("is each line's last point, even when newer rows lack that line", () => {
    const data = gpuHourLines([
      { offer_key: "a", provider: "aws", region: "r", instance_type: "x", gpu_model: "H100 SXM", gpu_count: 8, spot: false,
        points: [{ t: "2026-01-01T00:00:00Z", open: 80, high: 80, low: 80, close: 80, ticks: 1 }, { t: "2026-01-01T01:00:00Z", open: 72, high: 72, low: 72, close: 72, ticks: 1 }] },
      { offer_key: "b", provider: "vast", region: "r", instance_type: "y", gpu_model: "H100 SXM", gpu_count: 1, spot: true,
        points: [{ t: "2026-01-01T02:00:00Z", open: 2, high: 2, low: 2, close: 2, ticks: 1 }] },
    ]);
    expect(latestPerLine(data).map((l) => [l.line.key, l.value, new Date(l.t).toISOString()])).toEqual([
      ["vast/r/spot", 2, "2026-01-01T02:00:00.000Z"],
      ["aws/r/on-demand", 9, "2026-01-01T01:00:00.000Z"],
    ]);
  });
});
