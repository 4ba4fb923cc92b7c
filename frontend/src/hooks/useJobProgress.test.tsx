import { act, renderHook } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FakeSocket, progress, status } from "../test/fakeSocket";
import { applyEvent, initialProgress } from "./jobStream";
import type { JobEvent } from "../api/types";
import { useJobProgress } from "./useJobProgress";

const url = (jobId: string, after: number) => `ws://api/ws/jobs/${jobId}?token=t${after ? `&after=${after}` : ""}`;

function setup(onTerminal = vi.fn()) {
  const hook = renderHook(() =>
    useJobProgress("j1", { url, WebSocketImpl: FakeSocket, retryDelaysMs: [100, 200], maxRetries: 3, onTerminal }),
  );
  return { ...hook, onTerminal };
}

async function flush(): Promise<void> {
  await act(async () => {
    await Promise.resolve();
  });
}

beforeEach(() => {
  FakeSocket.reset();
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe("applyEvent", () => {
  it("keeps events in sequence order and drops duplicates and older ones", () => {
    let s = initialProgress;
    for (const e of [progress(1, "loading", 5), progress(2, "building", 10), progress(2, "building", 10), progress(1, "loading", 5)]) {
      s = applyEvent(s, e as JobEvent);
    }
    expect(s.events.map((e) => e.seq)).toEqual([1, 2]);
    expect(s.progress?.phase).toBe("building");
    expect(s.lastSeq).toBe(2);
  });

  it("keeps the bar's percent from running backwards between phases and fills it on the terminal event", () => {
    let s = initialProgress;
    const percents: number[] = [];
    for (const e of [progress(1, "building", 10), progress(2, "lp", 1), progress(3, "mip", 4), status(4, "finished", true)]) {
      s = applyEvent(s, e as JobEvent);
      percents.push(s.percent);
    }
    expect(percents).toEqual([10, 10, 10, 100]);
    expect(s.progress?.phase).toBe("mip");
  });
});

describe("useJobProgress", () => {
  it("streams progress in order and ignores repeated sequence numbers", async () => {
    const { result } = setup();
    await flush();
    const ws = FakeSocket.last();
    expect(ws.url).toBe("ws://api/ws/jobs/j1?token=t");
    act(() => {
      ws.open();
      ws.send(status(1, "queued"));
      ws.send(status(2, "running"));
      ws.send(progress(3, "solve", 40, { incumbent: 12.5, bound: 11, gap: 0.12 }));
      ws.send(progress(3, "solve", 40, { incumbent: 12.5, bound: 11, gap: 0.12 }));
      ws.send(progress(2, "stale", 1));
    });
    expect(result.current.connection).toBe("open");
    expect(result.current.events.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(result.current.status).toBe("running");
    expect(result.current.progress).toMatchObject({ phase: "solve", percent: 40, incumbent: 12.5, bound: 11, gap: 0.12 });
  });

  it("reconnects after a drop and resumes after the last sequence number", async () => {
    const { result } = setup();
    await flush();
    const first = FakeSocket.last();
    act(() => {
      first.open();
      first.send(status(1, "running"));
      first.send(progress(2, "solve", 30));
      first.drop(1006);
    });
    expect(result.current.connection).toBe("reconnecting");
    expect(FakeSocket.instances).toHaveLength(1);
    await act(async () => {
      vi.advanceTimersByTime(100);
      await Promise.resolve();
    });
    expect(FakeSocket.instances).toHaveLength(2);
    const second = FakeSocket.last();
    expect(second.url).toContain("after=2");
    act(() => {
      second.open();
      second.send(progress(2, "solve", 30)); // replay overlap: dropped
      second.send(progress(3, "solve", 60));
    });
    expect(result.current.events.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(result.current.progress?.percent).toBe(60);
    expect(result.current.reconnects).toBe(1);
  });

  it("closes on the terminal event, reports it once and never reconnects", async () => {
    const { result, onTerminal } = setup();
    await flush();
    const ws = FakeSocket.last();
    act(() => {
      ws.open();
      ws.send(progress(1, "done", 100));
      ws.send(status(2, "finished", true, "optimal: $10.00/h for 8 GPUs"));
      ws.send(progress(3, "after-the-end", 100));
    });
    expect(ws.closedByClient).not.toBeNull();
    expect(result.current.terminal).toBe(true);
    expect(result.current.status).toBe("finished");
    expect(result.current.statusMessage).toContain("optimal");
    expect(result.current.connection).toBe("closed");
    expect(result.current.lastSeq).toBe(2);
    expect(onTerminal).toHaveBeenCalledTimes(1);
    await act(async () => {
      vi.advanceTimersByTime(10_000);
    });
    expect(FakeSocket.instances).toHaveLength(1);
  });

  it("gives up on a refused stream (unknown job) without retrying", async () => {
    const { result } = setup();
    await flush();
    act(() => FakeSocket.last().drop(4404, "job j1 not found"));
    await act(async () => {
      vi.advanceTimersByTime(10_000);
    });
    expect(result.current.connection).toBe("failed");
    expect(result.current.error).toBe("job j1 not found");
    expect(FakeSocket.instances).toHaveLength(1);
  });

  it("stops after the retry budget when the server stays unreachable", async () => {
    const { result } = setup();
    for (let i = 0; i < 4; i += 1) {
      await flush();
      act(() => FakeSocket.last().drop(1006));
      await act(async () => {
        vi.advanceTimersByTime(200);
      });
    }
    await flush();
    expect(result.current.connection).toBe("failed");
    expect(FakeSocket.instances).toHaveLength(4);
  });

  it("closes the socket when the component unmounts", async () => {
    const { unmount } = setup();
    await flush();
    const ws = FakeSocket.last();
    unmount();
    expect(ws.closedByClient?.code).toBe(1000);
  });
});
