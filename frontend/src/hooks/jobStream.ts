/**
 * Follow one job's event stream over WebSocket, framework-free (the React hook wraps it).
 *
 * The server replays stored events after ``?after=<seq>`` and then streams live ones, closing after
 * the terminal status event. So a dropped connection is resumed from the last sequence number seen,
 * and any event that arrives twice (replay overlapping live delivery) is dropped by its ``seq``.
 */
import type { JobEvent, JobStatus, ProgressEvent } from "../api/types";

export type Connection = "idle" | "connecting" | "open" | "reconnecting" | "closed" | "failed";

export interface ProgressState {
  events: JobEvent[];
  lastSeq: number;
  progress: ProgressEvent | null;
  /** Highest percent reported so far: a progress bar should not run backwards between phases. */
  percent: number;
  status: JobStatus | null;
  statusMessage: string;
  terminal: boolean;
  connection: Connection;
  error: string | null;
  reconnects: number;
}

export const initialProgress: ProgressState = {
  events: [],
  lastSeq: 0,
  progress: null,
  percent: 0,
  status: null,
  statusMessage: "",
  terminal: false,
  connection: "idle",
  error: null,
  reconnects: 0,
};

/** Fold one event into the state; an event at or below the last sequence number is a duplicate. */
export function applyEvent(state: ProgressState, event: JobEvent): ProgressState {
  if (!Number.isInteger(event.seq) || event.seq <= state.lastSeq) return state;
  const next: ProgressState = { ...state, events: [...state.events, event], lastSeq: event.seq };
  if (event.type === "progress") {
    next.progress = event;
    if (typeof event.percent === "number") next.percent = Math.min(100, Math.max(state.percent, event.percent));
  } else if (event.type === "status") {
    next.status = event.status;
    next.statusMessage = event.message ?? "";
    next.terminal = Boolean(event.terminal);
    if (next.terminal) next.percent = 100;
  }
  return next;
}

/** The part of the browser WebSocket this module uses (so tests can pass a fake). */
export interface SocketLike {
  onopen: ((ev: Event) => void) | null;
  onmessage: ((ev: MessageEvent) => void) | null;
  onclose: ((ev: CloseEvent) => void) | null;
  onerror: ((ev: Event) => void) | null;
  close(code?: number, reason?: string): void;
}

export type SocketFactory = new (url: string, protocols?: string[]) => SocketLike;

/** Where to connect: the URL, and the subprotocols that carry the credential (never the URL). */
export interface SocketTarget {
  url: string;
  protocols?: string[];
}

export interface JobStreamOptions {
  /** The socket URL resuming after ``after`` (may refresh a token, hence possibly async). */
  url: (after: number) => string | SocketTarget | Promise<string | SocketTarget>;
  onChange: (state: ProgressState) => void;
  WebSocketImpl?: SocketFactory;
  /** Delays before successive reconnects; the last one repeats. */
  retryDelaysMs?: readonly number[];
  /** Consecutive failed connections (no event received) before giving up. */
  maxRetries?: number;
}

/** Close codes after which retrying cannot help: bad credentials, unknown job. */
const FATAL_CODES = new Set([4401, 4403, 4404]);
const DEFAULT_DELAYS = [500, 1000, 2000, 4000, 8000] as const;

function parseEvent(data: unknown): JobEvent | null {
  if (typeof data !== "string") return null;
  try {
    const value = JSON.parse(data) as Partial<JobEvent>;
    if (typeof value.seq !== "number" || (value.type !== "progress" && value.type !== "status")) return null;
    return value as JobEvent;
  } catch {
    return null;
  }
}

export class JobStream {
  private state: ProgressState = initialProgress;
  private socket: SocketLike | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private failures = 0;
  private stopped = false;
  private readonly delays: readonly number[];
  private readonly maxRetries: number;
  private readonly Socket: SocketFactory;

  constructor(private readonly options: JobStreamOptions) {
    this.delays = options.retryDelaysMs?.length ? options.retryDelaysMs : DEFAULT_DELAYS;
    this.maxRetries = options.maxRetries ?? 8;
    this.Socket = options.WebSocketImpl ?? (WebSocket as unknown as SocketFactory);
  }

  get current(): ProgressState {
    return this.state;
  }

  start(): void {
    this.stopped = false;
    void this.connect();
  }

  /** Stop for good: close the socket and cancel any pending reconnect. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.detach(true);
  }

  private update(patch: Partial<ProgressState>): void {
    this.state = { ...this.state, ...patch };
    this.options.onChange(this.state);
  }

  private detach(close: boolean): void {
    const socket = this.socket;
    this.socket = null;
    if (!socket) return;
    socket.onopen = socket.onmessage = socket.onerror = socket.onclose = null;
    if (close) socket.close(1000, "done");
  }

  private async connect(): Promise<void> {
    this.update({ connection: this.state.reconnects > 0 ? "reconnecting" : "connecting" });
    let target: SocketTarget;
    try {
      const got = await this.options.url(this.state.lastSeq);
      target = typeof got === "string" ? { url: got } : got;
    } catch (err) {
      this.update({ connection: "failed", error: err instanceof Error ? err.message : String(err) });
      return;
    }
    if (this.stopped) return;
    const socket = target.protocols ? new this.Socket(target.url, target.protocols) : new this.Socket(target.url);
    this.socket = socket;
    socket.onopen = () => this.update({ connection: "open", error: null });
    socket.onmessage = (ev) => this.receive(ev.data);
    socket.onerror = () => {
      /* the close event that follows decides what to do */
    };
    socket.onclose = (ev) => this.closed(ev.code, ev.reason);
  }

  private receive(data: unknown): void {
    const event = parseEvent(data);
    if (!event) return;
    this.failures = 0;
    const next = applyEvent(this.state, event);
    if (next === this.state) return;
    this.state = next;
    this.options.onChange(this.state);
    if (next.terminal) {
      this.detach(true);
      this.update({ connection: "closed" });
    }
  }

  private closed(code: number, reason: string): void {
    this.detach(false);
    if (this.stopped || this.state.terminal) {
      this.update({ connection: "closed" });
      return;
    }
    if (FATAL_CODES.has(code)) {
      this.update({ connection: "failed", error: reason || `the server refused the stream (code ${code})` });
      return;
    }
    this.failures += 1;
    if (this.failures > this.maxRetries) {
      this.update({ connection: "failed", error: `lost the progress stream after ${this.maxRetries} retries` });
      return;
    }
    const delay = this.delays[Math.min(this.failures - 1, this.delays.length - 1)] ?? 1000;
    this.update({ connection: "reconnecting", reconnects: this.state.reconnects + 1 });
    this.timer = setTimeout(() => {
      this.timer = null;
      if (!this.stopped) void this.connect();
    }, delay);
  }
}
