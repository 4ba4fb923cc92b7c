import { describe, expect, it } from "vitest";

import { dollarTick } from "./format";

describe("dollarTick", () => {
  it("keeps sub-dollar axis ticks apart instead of reading $0 at each", () => {
    expect([0, 0.0925, 0.1, 0.25, 0.37].map(dollarTick)).toEqual(["$0", "$0.0925", "$0.1", "$0.25", "$0.37"]);
  });

  it("drops decimals that larger ticks do not need", () => {
    expect([1, 12.5, 99.95, 100, 1250.4].map(dollarTick)).toEqual(["$1", "$12.5", "$100", "$100", "$1,250"]);
  });
});
