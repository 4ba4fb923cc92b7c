/** A scriptable stand-in for the browser WebSocket: tests push messages and closes by hand. */
import type { SocketLike } from "../hooks/jobStream";

export class FakeSocket implements SocketLike {
  static instances: FakeSocket[] = [];
  onopen: ((ev: Event) => void) | null = null;
  onmessage: ((ev: MessageEvent) => void) | null = null;
  onclose: ((ev: CloseEvent) => void) | null = null;
  onerror: ((ev: Event) => void) | null = null;
  closedByClient: { code?: number; reason?: string } | null = null;

  constructor(
    readonly url: string,
    readonly protocols?: string[],
  ) {
    FakeSocket.instances.push(this);
  }

  static reset(): void {
    FakeSocket.instances = [];
  }

  static last(): FakeSocket {
    const socket = FakeSocket.instances.at(-1);
    if (!socket) throw new Error("no socket was opened");
    return socket;
  }

  open(): void {
    this.onopen?.(new Event("open"));
  }

  send(event: object): void {
    this.onmessage?.(new MessageEvent("message", { data: JSON.stringify(event) }));
  }

  drop(code = 1006, reason = ""): void {
    this.onclose?.(new CloseEvent("close", { code, reason }));
  }

  close(code?: number, reason?: string): void {
    this.closedByClient = { code, reason };
  }
}

export function progress(seq: number, phase: string, percent: number, extra: object = {}): object {
  return { job_id: "j1", seq, type: "progress", ts: "2026-01-01T00:00:00Z", phase, percent, message: "", ...extra };
}

export function status(seq: number, value: string, terminal = false, message = ""): object {
  return { job_id: "j1", seq, type: "status", ts: "2026-01-01T00:00:00Z", status: value, terminal, message };
}
