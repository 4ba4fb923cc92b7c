/** One optimization's outcome: allocation, totals, savings, risk and solver statistics; or why there is none. */
import { resultOf, type Allocation, type BindingConstraint, type Optimization, type OptimizationResult } from "../api/types";
import { dateTime, money, num, pct, share } from "../format";
import { plainWords } from "./bindingWords";
import { AllocationChart, BASELINE_LABELS, ParetoChart, SavingsChart, type FrontKind, type FrontPoint, type Fronts } from "./ResultCharts";

function AllocationTable({ lines }: { lines: Allocation[] }) {
  if (lines.length === 0) return <p className="muted">No allocation lines.</p>;
  const total = lines.reduce((s, l) => s + l.hourly_cost, 0);
  const gpus = lines.reduce((s, l) => s + l.gpus, 0);
  return (
    <table className="data" aria-label="allocation">
      <thead>
        <tr>
          <th>Workload</th>
          <th>Provider</th>
          <th>Region</th>
          <th>Instance</th>
          <th>GPU</th>
          <th className="num">Instances</th>
          <th className="num">GPUs</th>
          <th>Market</th>
          <th className="num">$/hour</th>
        </tr>
      </thead>
      <tbody>
        {lines.map((l) => (
          <tr key={`${l.workload_id}/${l.offer_key}`}>
            <td>{l.workload_id}</td>
            <td>{l.provider}</td>
            <td>{l.region || "—"}</td>
            <td>
              <code>{l.instance_type}</code>
            </td>
            <td>{l.gpu_model}</td>
            <td className="num">{l.instances}</td>
            <td className="num">{l.gpus}</td>
            <td>{l.spot ? <span className="tag tag-spot">spot</span> : "on-demand"}</td>
            <td className="num">{money(l.hourly_cost)}</td>
          </tr>
        ))}
      </tbody>
      <tfoot>
        <tr>
          <th colSpan={6}>Total</th>
          <th className="num">{gpus}</th>
          <th />
          <th className="num">{money(total)}</th>
        </tr>
      </tfoot>
    </table>
  );
}

function Totals({ result }: { result: OptimizationResult }) {
  const t = result.totals;
  if (!t) return null;
  const best = (result.savings ?? []).filter((s) => s.savings_pct !== null).sort((a, b) => (b.savings_pct ?? 0) - (a.savings_pct ?? 0))[0];
  return (
    <div className="cards">
      <div className="card">
        <div className="card-label">Cost per hour</div>
        <div className="card-value">{money(t.cost_per_hour)}</div>
      </div>
      <div className="card">
        <div className="card-label">Cost over horizon</div>
        <div className="card-value">{money(t.cost_over_horizon)}</div>
      </div>
      <div className="card">
        <div className="card-label">GPUs</div>
        <div className="card-value">{t.gpus}</div>
      </div>
      <div className="card">
        <div className="card-label">Performance (A100-eq.)</div>
        <div className="card-value">{num(t.performance_score, 1)}</div>
      </div>
      {best && (
        <div className={(best.savings_pct ?? 0) > 0 ? "card good" : "card"}>
          <div className="card-label">Savings vs best baseline</div>
          <div className="card-value">{pct(best.savings_pct)}</div>
        </div>
      )}
    </div>
  );
}

function SavingsTable({ result }: { result: OptimizationResult }) {
  const rows = result.savings ?? [];
  if (rows.length === 0) return null;
  return (
    <>
      <h3>Savings against baselines</h3>
      <div className="scroll">
      <table className="data compact" aria-label="savings">
        <thead>
          <tr>
            <th>Baseline</th>
            <th className="num">Baseline $/hour</th>
            <th className="num">Saved $/hour</th>
            <th className="num">Saved</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((s) => (
            <tr key={s.baseline}>
              <td>{BASELINE_LABELS[s.baseline] ?? s.baseline}</td>
              <td className="num">{s.baseline_cost_per_hour === null ? "not feasible" : money(s.baseline_cost_per_hour)}</td>
              <td className="num">{money(s.savings_per_hour)}</td>
              <td className="num">{pct(s.savings_pct)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      </div>
    </>
  );
}

const SHOWN_CONSTRAINTS = 6;

/** The constraints that cost most at the margin first; a long tail stays folded. */
function BindingList({ items, objective }: { items: BindingConstraint[]; objective: string }) {
  const sorted = [...items].sort((a, b) => Math.abs(b.shadow_price) - Math.abs(a.shadow_price));
  const line = (b: BindingConstraint) => (
    <li key={b.name} title={`${b.name}: shadow price ${num(b.shadow_price, 4)}`}>
      {plainWords(b, objective)}
    </li>
  );
  return (
    <>
      <ul className="plain">{sorted.slice(0, SHOWN_CONSTRAINTS).map(line)}</ul>
      {sorted.length > SHOWN_CONSTRAINTS && (
        <details className="more">
          <summary>{sorted.length - SHOWN_CONSTRAINTS} more</summary>
          <ul className="plain">{sorted.slice(SHOWN_CONSTRAINTS).map(line)}</ul>
        </details>
      )}
    </>
  );
}

/** What the optimizer's expected launch cost means, for the people who read it: not money paid. */
const LAUNCH_COST_HINT = "expected cost of launches refused for lack of capacity";

function RiskAndConstraints({ result, objective }: { result: OptimizationResult; objective: string }) {
  const risk = result.risk;
  const binding = result.binding_constraints ?? [];
  return (
    <div className="two-col">
      {risk && (
        <div>
          <h3>Risk</h3>
          <dl className="kv">
            <dt>Expected interruptions/hour</dt>
            <dd>{num(risk.expected_interruptions_per_hour, 3)}</dd>
            <dt>Expected interruption cost/hour</dt>
            <dd>{money(risk.expected_interruption_cost_per_hour)}</dd>
            {(risk.expected_launch_cost_per_hour ?? 0) > 0 && (
              <>
                <dt title={LAUNCH_COST_HINT}>Expected launch cost/hour</dt>
                <dd title={LAUNCH_COST_HINT}>{money(risk.expected_launch_cost_per_hour)}</dd>
              </>
            )}
            <dt>CVaR cost/hour</dt>
            <dd>{money(risk.cvar_cost_per_hour)}</dd>
            <dt>Largest provider share</dt>
            <dd>{share(risk.largest_provider_share)}</dd>
          </dl>
        </div>
      )}
      {binding.length > 0 && (
        <div>
          <h3>What limits this result</h3>
          <BindingList items={binding} objective={objective} />
        </div>
      )}
    </div>
  );
}

export function SolverStats({ result }: { result: OptimizationResult }) {
  const s = result.stats;
  if (!s) return null;
  return (
    <>
      <h3>Solver</h3>
      <dl className="kv inline" aria-label="solver statistics">
        <dt>Backend</dt>
        <dd>{s.engine ? `${s.backend} (${s.engine})` : s.backend}</dd>
        <dt>Status</dt>
        <dd>{s.status}</dd>
        <dt>Objective</dt>
        <dd>{num(s.objective, 4)}</dd>
        <dt>Best bound</dt>
        <dd>{num(s.best_bound, 4)}</dd>
        <dt>Gap</dt>
        <dd>{s.gap === null ? "—" : pct(s.gap * 100, 2)}</dd>
        <dt>Build / solve</dt>
        <dd>
          {num(s.build_seconds, 2)} s / {num(s.solve_seconds, 2)} s
        </dd>
        <dt>Variables / constraints</dt>
        <dd>
          {num(s.variables)} / {num(s.constraints)}
        </dd>
        <dt>Offers considered</dt>
        <dd>
          {num(result.offers_considered ?? null)}
          {s.presolve_offers_removed ? ` (${s.presolve_offers_removed} removed by presolve)` : ""}
        </dd>
        <dt>Prices as of</dt>
        <dd>{dateTime(result.prices_as_of)}</dd>
      </dl>
    </>
  );
}

export interface ResultViewProps {
  optimization: Optimization;
  allocations: Allocation[];
  /** Re-solve at a picked point of a Pareto front. */
  onPick?: (kind: FrontKind, point: FrontPoint) => void;
  picking?: boolean;
}

export function ResultView({ optimization, allocations, onPick, picking }: ResultViewProps) {
  const result = resultOf(optimization);
  const status = optimization.status;
  const objective = String((optimization.request as { objective?: string }).objective ?? "cost");
  const fronts = (result as { fronts?: Fronts | null } | null)?.fronts ?? null;
  return (
    <div className="result">
      <h2>Result</h2>
      {status === "finished" && result && (
        <>
          <Totals result={result} />
          {result.policy_decision && (
            <p>
              Policy decision: <strong>{result.policy_decision}</strong>
              {result.savings_vs_current_pct !== undefined && result.savings_vs_current_pct !== null
                ? ` (${pct(result.savings_vs_current_pct)} vs current)`
                : ""}
            </p>
          )}
          <div className="chart-grid">
            <SavingsChart result={result} />
            <AllocationChart lines={allocations} />
          </div>
          {fronts && onPick && (
            <ParetoChart
              fronts={fronts}
              onPick={onPick}
              busy={picking}
              current={result.totals ? {
                cost: result.totals.cost_per_hour,
                risk: result.risk?.cvar_cost_per_hour ?? result.risk?.expected_interruption_cost_per_hour ?? 0,
                performance: result.totals.performance_score,
              } : undefined}
            />
          )}
          <h3>Allocation</h3>
          <div className="scroll">
            <AllocationTable lines={allocations} />
          </div>
          <SavingsTable result={result} />
          <RiskAndConstraints result={result} objective={objective} />
          <SolverStats result={result} />
        </>
      )}
      {status === "infeasible" && (
        <>
          <div className="notice warn" role="status">
            <strong>No feasible allocation.</strong> {result?.infeasibility_reason ?? "The solver proved the request cannot be met."}
          </div>
          {result && <SolverStats result={result} />}
        </>
      )}
      {status === "failed" && (
        <div className="error" role="alert">
          <strong>The optimization failed.</strong> {optimization.error ?? "No error message was recorded."}
        </div>
      )}
      {status === "canceled" && <div className="notice">This optimization was canceled.</div>}
      {status === "finished" && !result && <p className="muted">The result is not stored yet.</p>}
    </div>
  );
}
