/**
 * Binding constraints in plain words. The optimizer names each binding row ``kind[key]`` (with
 * ``@t<period>`` for multi-period solves) and gives its shadow price: how much the objective moves
 * if that limit is relaxed by one unit. A buyer wants to read "the budget is what stops a better
 * fleet", not "valid inequality of the tightened model".
 */
import type { BindingConstraint } from "../api/types";
import { money, num } from "../format";

export interface Parsed {
  kind: string;
  key: string;
  period: number | null;
}

export function parseName(name: string): Parsed {
  const m = /^([a-z_]+)(?:\[(.*)\])?(?:@t(\d+))?$/.exec(name);
  if (!m) return { kind: name, key: "", period: null };
  return { kind: m[1] ?? name, key: m[2] ?? "", period: m[3] === undefined ? null : Number(m[3]) };
}

/** What relaxing the limit by one unit is worth, in the objective's units. */
function worth(shadow: number, objective: string): string {
  const size = Math.abs(shadow);
  if (objective === "cost") return `${money(size, true)}/hour`;
  return `${num(size, 4)} (objective units)`;
}

const LIMITS: Record<string, (key: string) => [string, string]> = {
  demand: (k) => [`Workload “${k}” needs its minimum number of GPUs`, "each GPU fewer it required would save"],
  capacity: (k) => [`Offer ${k} is used up to the instances it has available`, "one more available instance would save"],
  budget: () => ["The hourly budget limits the result", "each extra $1/hour of budget would improve the objective by"],
  provider: (k) => [`The cap on the share at provider ${k} is reached`, "loosening it by one GPU's share would save"],
  region: (k) => [`The cap on the share in region ${k} is reached`, "loosening it by one GPU's share would save"],
  spot: () => ["The maximum spot share is reached", "allowing one more spot GPU would save"],
  od_floor: (k) => [`Inference workload “${k}” must keep its on-demand share`, "one on-demand GPU fewer would save"],
  cvar_cap: () => ["The cap on tail cost risk (CVaR) is reached", "allowing $1/hour more tail risk would save"],
  migration: (k) => [`Keeping current line ${k} in place limits the result`, "moving one more GPU off it would save"],
  one_place: (k) => [`Workload “${k}” must run in one place (same zone or region)`, "splitting it would save"],
  cut: (k) => [
    `Workload “${k}” is bought in whole instances`,
    "rounding to whole machines costs (part of what one more GPU of its demand costs)",
  ],
};

export function plainWords(b: BindingConstraint, objective = "cost"): string {
  const { kind, key, period } = parseName(b.name);
  const phrase = LIMITS[kind];
  const when = period !== null && period > 0 ? ` in period ${period + 1}` : "";
  if (!phrase) return `${b.description || b.name}${when}: relaxing it is worth ${worth(b.shadow_price, objective)}.`;
  const [what, relax] = phrase(key);
  return `${what}${when}: ${relax} ${worth(b.shadow_price, objective)}.`;
}
