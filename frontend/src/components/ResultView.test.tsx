import { render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { allocations, failed, finished, infeasible } from "../test/fixtures";
import { ResultView } from "./ResultView";

describe("ResultView", () => {
  it("shows a finished run: totals, allocation with its total, savings, risk and solver stats", () => {
    render(<ResultView optimization={finished} allocations={allocations} />);
    expect(screen.getByRole("heading", { name: "Result" })).toBeTruthy();
    expect(screen.getAllByText("$31.50").length).toBeGreaterThan(0);
    expect(screen.getByText("Savings vs best baseline").nextElementSibling?.textContent).toBe("30.0%");

    const table = screen.getByRole("table", { name: "allocation" });
    const rows = within(table).getAllByRole("row");
    expect(rows).toHaveLength(4); // header, 2 lines, total
    expect(within(rows[2]!).getByText("spot")).toBeTruthy();
    expect(within(rows[3]!).getByText("16")).toBeTruthy();
    expect(within(rows[3]!).getByText("$31.50")).toBeTruthy();

    const savings = screen.getByRole("table", { name: "savings" });
    expect(within(savings).getByText("Cheapest single provider, on-demand")).toBeTruthy();
    expect(within(savings).getByText("$13.50")).toBeTruthy();
    expect(within(savings).getByText("4.5%")).toBeTruthy();

    expect(screen.getByText(/no provider above 50%/)).toBeTruthy();
    const stats = screen.getByLabelText("solver statistics");
    expect(within(stats).getByText("ortools (glop+scip)")).toBeTruthy();
    expect(within(stats).getByText("412 / 57")).toBeTruthy();
    expect(within(stats).getByText("503")).toBeTruthy();
    expect(screen.queryByRole("alert")).toBeNull();
  });

  it("shows the expected launch cost with its meaning in plain words, and only when there is one", () => {
    const { unmount } = render(<ResultView optimization={finished} allocations={allocations} />);
    expect(screen.queryByText("Expected launch cost/hour")).toBeNull();
    unmount();
    const result = finished.result!;
    const withLaunch = { ...finished, result: { ...result, risk: { ...result.risk!, expected_launch_cost_per_hour: 1.25 } } };
    render(<ResultView optimization={withLaunch} allocations={allocations} />);
    const label = screen.getByText("Expected launch cost/hour");
    expect(label.getAttribute("title")).toBe("expected cost of launches refused for lack of capacity");
    expect(label.nextElementSibling?.textContent).toBe("$1.25");
  });

  it("shows the infeasibility reason and no allocation table", () => {
    render(<ResultView optimization={infeasible} allocations={[]} />);
    expect(screen.getByRole("status").textContent).toContain("only 8 fit under the budget");
    expect(screen.queryByRole("table", { name: "allocation" })).toBeNull();
    expect(screen.getByLabelText("solver statistics")).toBeTruthy();
  });

  it("shows the error of a failed run", () => {
    render(<ResultView optimization={failed} allocations={[]} />);
    const alert = screen.getByRole("alert");
    expect(alert.textContent).toContain("The optimization failed.");
    expect(alert.textContent).toContain("no solution within its time limit");
    expect(screen.queryByRole("table")).toBeNull();
  });
});
