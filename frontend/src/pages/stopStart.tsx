/**
 * Stop and start on the deployment page: which instances each button acts on, why a button is off, and
 * how an instance's pause reads. The server decides (it refuses with 409 naming why); these rules only
 * keep the buttons honest about what it would accept, from the ``can_stop`` each instance recorded at
 * launch and its state.
 */
import type { components } from "../api/schema";
import { age, dateTime } from "../format";

type Instance = components["schemas"]["InstanceOut"];
export type StopStartAction = "stop" | "start";

const ENDED = new Set(["terminated", "failed"]);
/** States the server accepts each action in; the other stoppable states would be a no-op or still moving. */
const FROM: Record<StopStartAction, ReadonlySet<string>> = {
  stop: new Set(["running", "reachable"]),
  start: new Set(["stopped", "stopping"]),
};

/** Why this instance can never be stopped (None when its provider can stop and start it). */
export function cannotStop(i: Instance): string | null {
  if (i.can_stop) return null;
  if (i.spot) return `${i.provider} spot instances cannot be stopped: a one-time spot request can only be destroyed`;
  return `${i.provider} instances cannot be stopped and started, only destroyed`;
}

export interface ActionPlan {
  /** Instance ids the action would touch (empty: the button is off). */
  ids: string[];
  /** The request body: absent when the action covers every live instance (the server's default). */
  body?: { instances: string[] };
  /** Why the button is off; null when it is on. */
  reason: string | null;
}

export interface StopStartPlan {
  stop: ActionPlan;
  start: ActionPlan;
  /** Shown next to the buttons: why none can stop, or which instances the buttons leave out. */
  note: string | null;
}

function unique(items: (string | null)[]): string[] {
  return [...new Set(items.filter((s): s is string => Boolean(s)))];
}

/** What the deployment-wide Stop and Start would do now. */
export function planStopStart(instances: Instance[]): StopStartPlan {
  const live = instances.filter((i) => !ENDED.has(i.state));
  const able = live.filter((i) => i.can_stop);
  const why = unique(live.map(cannotStop));
  const action = (kind: StopStartAction): ActionPlan => {
    const ids = able.filter((i) => FROM[kind].has(i.state)).map((i) => i.id);
    let reason: string | null = null;
    if (live.length === 0) reason = "no live instance";
    else if (able.length === 0) reason = why.join("; ");
    else if (ids.length === 0) reason = kind === "stop" ? "no running instance to stop" : "no stopped instance to start";
    const body = ids.length > 0 && ids.length < live.length ? { instances: ids } : undefined;
    return { ids: reason ? [] : ids, body, reason };
  };
  let note: string | null = null;
  if (live.length > 0 && able.length === 0) note = `Stop and start unavailable: ${why.join("; ")}.`;
  else if (able.length < live.length)
    note = `${live.length - able.length} of ${live.length} instances cannot stop (${why.join("; ")}); Stop and Start act on the others.`;
  return { stop: action("stop"), start: action("start"), note };
}

/** The per-instance button: the action this instance accepts now, if any. */
export function instanceAction(i: Instance): StopStartAction | null {
  if (!i.can_stop) return null;
  if (FROM.stop.has(i.state)) return "stop";
  if (FROM.start.has(i.state)) return "start";
  return null;
}

/** An instance's stop/start figures in words: the asked state, the open pause, the time left unbilled. */
export function PauseInfo({ instance: i }: { instance: Instance }) {
  const parts: string[] = [];
  if (i.desired_state && i.desired_state !== i.state) parts.push(`${i.desired_state} asked`);
  if (i.paused_since) parts.push(`paused since ${dateTime(i.paused_since)}`);
  if ((i.paused_seconds ?? 0) > 0) parts.push(`${age(i.paused_seconds ?? 0)} unbilled`);
  if (parts.length === 0) return null;
  return (
    <span className="muted" title="compute is not billed while the provider reports the instance stopped">
      {" "}
      · {parts.join(" · ")}
    </span>
  );
}
