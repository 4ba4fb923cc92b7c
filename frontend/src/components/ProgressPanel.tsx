/** The live view of a running job: phase, percent bar, incumbent / bound / gap, connection state. */
import type { ProgressState } from "../hooks/jobStream";
import { num, pct } from "../format";
import { StatusBadge } from "./common";

const CONNECTION_LABELS: Record<ProgressState["connection"], string> = {
  idle: "",
  connecting: "connecting…",
  open: "live",
  reconnecting: "reconnecting…",
  closed: "stream closed",
  failed: "disconnected",
};

export function ProgressPanel({ state }: { state: ProgressState }) {
  const p = state.progress;
  const percent = Math.max(0, Math.min(100, state.percent));
  return (
    <div className="progress-panel" aria-label="job progress">
      <div className="progress-head">
        <span>
          {state.status && <StatusBadge status={state.status} />} <strong>{p?.phase ?? "waiting"}</strong>
          {p?.message ? ` — ${p.message}` : ""}
        </span>
        <span className={`conn conn-${state.connection}`}>{CONNECTION_LABELS[state.connection]}</span>
      </div>
      <div className="bar" role="progressbar" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(percent)}>
        <div className="bar-fill" style={{ width: `${percent}%` }} />
      </div>
      <dl className="kv inline">
        <dt>Progress</dt>
        <dd>{pct(percent, 0)}</dd>
        <dt>Incumbent</dt>
        <dd>{num(p?.incumbent ?? null, 4)}</dd>
        <dt>Bound</dt>
        <dd>{num(p?.bound ?? null, 4)}</dd>
        <dt>Gap</dt>
        <dd>{p?.gap === undefined || p.gap === null ? "—" : pct(p.gap * 100, 2)}</dd>
      </dl>
      {state.statusMessage && <p className="muted">{state.statusMessage}</p>}
      {state.error && (
        <p className="field-error" role="alert">
          {state.error}
        </p>
      )}
    </div>
  );
}
