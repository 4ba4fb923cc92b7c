/**
 * A forecast's skill statement in words: whether a model beat last value out of sample (the price
 * skill gate, ``ForecastOut.skill``), at which horizon steps it serves, and on what evidence; or why
 * last value (or another fallback) is served instead.
 */
import type { components } from "../api/schema";

type Forecast = components["schemas"]["ForecastOut"];

export const LAST_VALUE = "last_value";

export interface SkillStatement {
  verdict: "skill" | "no-skill" | "fallback";
  headline: string;
  detail: string | null;
  /** The rule a model had to pass, in the server's words (long: shown on demand). */
  rule: string | null;
}

/** Consecutive steps as ranges: [1, 2, 3, 5, 7, 8] -> "1–3, 5, 7–8". */
export function stepRanges(steps: number[]): string {
  const sorted = [...new Set(steps)].sort((a, b) => a - b);
  const parts: string[] = [];
  let i = 0;
  while (i < sorted.length) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === (sorted[j] ?? 0) + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}–${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(", ");
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** The statement shown beside a fan chart; null when the forecast carries neither a skill check nor a fallback. */
export function skillStatement(f: Pick<Forecast, "model" | "fallback" | "fallback_reason" | "skill">): SkillStatement | null {
  const skill = f.skill;
  if (skill) {
    const evidence = `Judged on ${plural(skill.n_origins, "backtest origin")}.`;
    if (skill.has_skill) {
      const served = skill.steps.filter((s) => s.served !== LAST_VALUE);
      const models = [...new Set(served.map((s) => s.served))];
      const rest = served.length < skill.steps.length ? "; last value serves the other steps" : "";
      return {
        verdict: "skill",
        headline: `Beats last value out of sample: ${models.join(", ")} serves ${served.length} of ${plural(skill.steps.length, "step")} (${stepRanges(served.map((s) => s.step))})${rest}.`,
        detail: evidence,
        rule: skill.rule,
      };
    }
    const why = skill.reason.replace(/^no skill over last value:\s*/i, "");
    return {
      verdict: "no-skill",
      headline: "No skill over last value: last value is served at every step.",
      detail: `${why ? `${why[0]?.toUpperCase()}${why.slice(1)}. ` : ""}${evidence}`,
      rule: skill.rule,
    };
  }
  if (f.fallback) return { verdict: "fallback", headline: `Fallback: ${f.model} is served.`, detail: f.fallback_reason ?? null, rule: null };
  return null;
}
