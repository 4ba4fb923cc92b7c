import { act, screen, waitFor, within } from "@testing-library/react";
import { beforeEach, describe, expect, it } from "vitest";
import type { Optimization } from "../api/types";
import { json, renderWith } from "../test/fakeApi";
import { FakeSocket, progress, status } from "../test/fakeSocket";
import { allocations, finished } from "../test/fixtures";
import { OptimizationDetailPage } from "./OptimizationDetailPage";

beforeEach(() => FakeSocket.reset());

describe("OptimizationDetailPage", () => {
  it("follows a running job over the socket, then fetches and shows the result on the terminal event", async () => {
    let current: Optimization = { ...finished, status: "running", result: null };
    const { requests } = renderWith(<OptimizationDetailPage id="opt1" />, (_req, url) => {
      if (url.pathname === "/api/optimize/opt1") return json(current);
      if (url.pathname === "/api/optimize/opt1/allocations") return json(allocations);
      return json({ error: { code: "not_found", message: url.pathname } }, 404);
    });
    await screen.findByLabelText("job progress");
    await waitFor(() => expect(FakeSocket.instances).toHaveLength(1));
    const ws = FakeSocket.last();
    expect(ws.url).toBe("ws://api.test/api/ws/jobs/j1");
    expect(ws.protocols).toEqual(["cloudarb.bearer", "ca_test"]);

    act(() => {
      ws.open();
      ws.send(status(1, "running"));
      ws.send(progress(2, "solve", 55, { incumbent: 31.5, bound: 30.1, gap: 0.0444 }));
    });
    expect(screen.getByRole("progressbar").getAttribute("aria-valuenow")).toBe("55");
    expect(screen.getByText("4.44%")).toBeTruthy();

    current = finished;
    act(() => ws.send(status(3, "finished", true, "optimal: $31.50/h for 16 GPUs")));
    const table = await screen.findByRole("table", { name: "allocation" });
    expect(within(table).getAllByRole("row")).toHaveLength(4);
    expect(screen.queryByLabelText("job progress")).toBeNull();
    expect(ws.closedByClient).not.toBeNull();
    expect(requests.map((r) => new URL(r.url).pathname)).toEqual([
      "/api/optimize/opt1",
      "/api/optimize/opt1",
      "/api/optimize/opt1/allocations",
    ]);
  });
});
