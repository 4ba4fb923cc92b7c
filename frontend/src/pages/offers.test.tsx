import { fireEvent, screen, waitFor, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { Offer } from "../api/types";
import { json, renderWith } from "../test/fakeApi";
import { OffersPage } from "./OffersPage";
import { buildOffersQuery, emptyFilters, toggleSort, viewFromParams, viewToParams } from "./offersQuery";

function offer(i: number, extra: Partial<Offer> = {}): Offer {
  return {
    offer_key: `k${i}`,
    provider: "lambda",
    region: "us-east-1",
    zone: "",
    instance_type: `gpu_${i}x_h100`,
    gpu_model: "H100 SXM",
    gpu_model_known: true,
    gpu_count: 8,
    vram_gb: 80,
    vcpus: 208,
    ram_gb: 1800,
    spot: false,
    price_per_hour: 23.92,
    price_per_gpu_hour: 2.99,
    capacity: "unknown",
    available_instances: null,
    reliability: null,
    observed_at: "2026-01-01T00:00:00Z",
    age_s: 7200,
    ...extra,
  };
}

describe("buildOffersQuery", () => {
  it("sends only the filters that are set, with lists split and providers lowercased", () => {
    const q = buildOffersQuery(
      { ...emptyFilters, provider: "AWS, gcp ,", gpuType: "H100 SXM, A100 80GB SXM", minVramGb: "40", maxPrice: "12.5", spot: "spot", maxAgeHours: "1.5" },
      { key: "price_per_hour", order: "desc" },
      50,
      100,
    );
    expect(q).toEqual({
      sort: "price_per_hour",
      order: "desc",
      limit: 50,
      offset: 100,
      provider: ["aws", "gcp"],
      gpu_type: ["H100 SXM", "A100 80GB SXM"],
      min_vram_gb: 40,
      max_price: 12.5,
      spot: true,
      max_age_s: 5400,
    });
  });

  it("ignores blank and invalid numbers and maps on-demand to spot=false", () => {
    const q = buildOffersQuery({ ...emptyFilters, minVramGb: "abc", maxPrice: " ", spot: "on_demand" }, { key: "vram_gb", order: "asc" }, 10, 0);
    expect(q).toEqual({ sort: "vram_gb", order: "asc", limit: 10, offset: 0, spot: false });
  });

  it("round-trips a view through URL parameters, dropping defaults and bad values", () => {
    const view = { filters: { ...emptyFilters, gpuType: "H100 SXM", spot: "spot" as const }, sort: { key: "vram_gb" as const, order: "desc" as const }, offset: 100 };
    const params = viewToParams(view);
    expect(params).toEqual({ gpu: "H100 SXM", market: "spot", sort: "vram_gb", order: "desc", offset: "100" });
    expect(viewFromParams(new URLSearchParams(params))).toEqual(view);
    const bad = viewFromParams(new URLSearchParams("market=free&sort=nope&offset=-5"));
    expect([bad.filters.spot, bad.sort.key, bad.offset]).toEqual(["any", "price_per_gpu_hour", 0]);
    expect(viewToParams(viewFromParams(new URLSearchParams()))).toEqual({});
  });

  it("toggles the order on the same column and resets it on another", () => {
    expect(toggleSort({ key: "vram_gb", order: "asc" }, "vram_gb")).toEqual({ key: "vram_gb", order: "desc" });
    expect(toggleSort({ key: "vram_gb", order: "desc" }, "gpu_count")).toEqual({ key: "gpu_count", order: "asc" });
  });
});

const GPUS = { items: [{ name: "H100 SXM" }, { name: "A100 80GB SXM" }], newest_price_at: null, stale_prices: null };

/** Only the requests of the offers list (the page also asks /gpus for the GPU filter). */
function offersCalls(requests: Request[]): Request[] {
  return requests.filter((r) => new URL(r.url).pathname === "/api/offers");
}

describe("OffersPage", () => {
  const handler = (_req: Request, url: URL) =>
    url.pathname.endsWith("/gpus") ? json(GPUS) : json({ items: [offer(1), offer(2, { provider: "vast", spot: true, age_s: 3 * 86400, price_per_gpu_hour: 0.0525 })], total: 120, limit: 50, offset: Number(url.searchParams.get("offset") ?? 0) });

  it("renders offers with prices and price age, and sends the API key", async () => {
    const { requests: all } = renderWith(<OffersPage />, handler);
    const table = await screen.findByRole("table");
    const requests = offersCalls(all);
    const rows = within(table).getAllByRole("row");
    expect(rows).toHaveLength(3);
    expect(within(rows[1]!).getByText("lambda")).toBeTruthy();
    expect(within(rows[1]!).getByText("$2.99")).toBeTruthy();
    expect(within(rows[1]!).getByText("2h")).toBeTruthy();
    expect(within(rows[2]!).getByText("spot")).toBeTruthy();
    expect(within(rows[2]!).getByText("$0.0525")).toBeTruthy();
    expect(within(rows[2]!).getByText("3d").className).toBe("stale");
    expect(screen.getByText("1–50 of 120")).toBeTruthy();
    expect(requests[0]!.headers.get("X-API-Key")).toBe("ca_test");
    expect(new URL(requests[0]!.url).pathname).toBe("/api/offers");
  });

  it("says plainly when the newest price is old", async () => {
    renderWith(<OffersPage />, () =>
      json({ items: [offer(1)], total: 1, limit: 50, offset: 0, stale_prices: "the newest price is 130 days old" }));
    expect((await screen.findByRole("status")).textContent).toContain("130 days old");
  });

  it("shows no stale-price banner for fresh prices", async () => {
    renderWith(<OffersPage />, handler);
    await screen.findByRole("table");
    expect(screen.queryByText(/Stale prices/)).toBeNull();
  });

  it("applies filters as repeated query parameters and resets to the first page", async () => {
    const { requests: all } = renderWith(<OffersPage />, handler);
    const calls = () => offersCalls(all);
    await screen.findByRole("table");
    fireEvent.click(screen.getByText("Next ›"));
    await waitFor(() => expect(calls()).toHaveLength(2));
    expect(new URL(calls()[1]!.url).searchParams.get("offset")).toBe("50");

    fireEvent.change(screen.getByLabelText("Provider"), { target: { value: "aws, gcp" } });
    fireEvent.change(screen.getByLabelText("Min VRAM/GPU (GB)"), { target: { value: "40" } });
    fireEvent.change(screen.getByLabelText("Market"), { target: { value: "spot" } });
    fireEvent.change(await screen.findByLabelText("GPU type"), { target: { value: "H100 SXM" } });
    fireEvent.click(screen.getByText("Apply"));
    await waitFor(() => expect(calls()).toHaveLength(3));
    const params = new URL(calls()[2]!.url).searchParams;
    expect(params.getAll("provider")).toEqual(["aws", "gcp"]);
    expect(params.getAll("gpu_type")).toEqual(["H100 SXM"]);
    expect(params.get("min_vram_gb")).toBe("40");
    expect(params.get("spot")).toBe("true");
    expect(params.get("offset")).toBe("0");
  });

  it("sorts by a column header, flipping the order on a second click", async () => {
    const { requests: all } = renderWith(<OffersPage />, handler);
    const calls = () => offersCalls(all);
    await screen.findByRole("table");
    fireEvent.click(screen.getByRole("button", { name: "VRAM/GPU" }));
    await waitFor(() => expect(calls()).toHaveLength(2));
    expect(new URL(calls()[1]!.url).searchParams.get("sort")).toBe("vram_gb");
    fireEvent.click(screen.getByRole("button", { name: /VRAM\/GPU/ }));
    await waitFor(() => expect(calls()).toHaveLength(3));
    const params = new URL(calls()[2]!.url).searchParams;
    expect([params.get("sort"), params.get("order")]).toEqual(["vram_gb", "desc"]);
  });

  it("keeps filters, sort and page in the URL, and a URL restores them", async () => {
    window.location.hash = "#/offers?gpu=A100+80GB+SXM&market=on_demand&sort=price_per_hour&order=desc&offset=50";
    const { requests: all } = renderWith(<OffersPage />, handler);
    await screen.findByRole("table");
    const first = new URL(offersCalls(all)[0]!.url).searchParams;
    expect([first.get("gpu_type"), first.get("spot"), first.get("sort"), first.get("order"), first.get("offset")])
      .toEqual(["A100 80GB SXM", "false", "price_per_hour", "desc", "50"]);
    fireEvent.change(screen.getByLabelText("Region"), { target: { value: "us-west-2" } });
    fireEvent.click(screen.getByText("Apply"));
    await waitFor(() => expect(window.location.hash).toContain("region=us-west-2"));
    expect(window.location.hash).toContain("gpu=A100+80GB+SXM");
    expect(window.location.hash).not.toContain("offset=");
  });

  it("shows the API's error message", async () => {
    renderWith(<OffersPage />, () => json({ error: { code: "invalid", message: "bad filter", field: "min_vram_gb", details: [] } }, 422));
    expect((await screen.findByRole("alert")).textContent).toBe("bad filter (min_vram_gb)");
  });
});
