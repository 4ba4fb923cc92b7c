/** The offers screen's filter form and how it becomes the query of ``GET /offers``. */
import type { operations } from "../api/schema";
import { csv } from "../format";

export type OffersQuery = NonNullable<operations["list_offers"]["parameters"]["query"]>;
export type SortKey = NonNullable<OffersQuery["sort"]>;

export interface OfferFilters {
  provider: string;
  gpuType: string;
  region: string;
  minVramGb: string;
  maxPrice: string;
  maxPricePerGpu: string;
  spot: "any" | "spot" | "on_demand";
  maxAgeHours: string;
}

export const emptyFilters: OfferFilters = {
  provider: "",
  gpuType: "",
  region: "",
  minVramGb: "",
  maxPrice: "",
  maxPricePerGpu: "",
  spot: "any",
  maxAgeHours: "",
};

export interface Sort {
  key: SortKey;
  order: "asc" | "desc";
}

function positive(text: string): number | undefined {
  const value = Number(text.trim());
  return text.trim() !== "" && Number.isFinite(value) && value >= 0 ? value : undefined;
}

/** Only the filters the user set become parameters; lists repeat the key (``provider=a&provider=b``). */
export function buildOffersQuery(filters: OfferFilters, sort: Sort, limit: number, offset: number): OffersQuery {
  const query: OffersQuery = { sort: sort.key, order: sort.order, limit, offset };
  const providers = csv(filters.provider).map((p) => p.toLowerCase());
  if (providers.length) query.provider = providers;
  const gpus = csv(filters.gpuType);
  if (gpus.length) query.gpu_type = gpus;
  const regions = csv(filters.region);
  if (regions.length) query.region = regions;
  const minVram = positive(filters.minVramGb);
  if (minVram !== undefined) query.min_vram_gb = minVram;
  const maxPrice = positive(filters.maxPrice);
  if (maxPrice !== undefined) query.max_price = maxPrice;
  const maxPerGpu = positive(filters.maxPricePerGpu);
  if (maxPerGpu !== undefined) query.max_price_per_gpu = maxPerGpu;
  if (filters.spot !== "any") query.spot = filters.spot === "spot";
  const maxAgeHours = positive(filters.maxAgeHours);
  if (maxAgeHours !== undefined && maxAgeHours > 0) query.max_age_s = Math.max(1, Math.round(maxAgeHours * 3600));
  return query;
}

/** Clicking a header sorts by it ascending; clicking the sorted header again flips the order. */
export function toggleSort(current: Sort, key: SortKey): Sort {
  return current.key === key ? { key, order: current.order === "asc" ? "desc" : "asc" } : { key, order: "asc" };
}

/** Short URL keys of the filters (``#/offers?gpu=H100+SXM&market=spot&sort=price_per_hour``). */
const URL_KEYS: Record<keyof OfferFilters, string> = {
  provider: "provider",
  gpuType: "gpu",
  region: "region",
  minVramGb: "min_vram",
  maxPrice: "max_price",
  maxPricePerGpu: "max_gpu_price",
  spot: "market",
  maxAgeHours: "max_age_h",
};

const SORT_KEYS: readonly SortKey[] = ["price_per_hour", "price_per_gpu_hour", "vram_gb", "gpu_count", "observed_at"];

export interface OffersView {
  filters: OfferFilters;
  sort: Sort;
  offset: number;
}

export const defaultSort: Sort = { key: "price_per_gpu_hour", order: "asc" };

/** The view a URL describes; unknown or malformed values fall back to the defaults. */
export function viewFromParams(params: URLSearchParams): OffersView {
  const filters = { ...emptyFilters };
  for (const [field, key] of Object.entries(URL_KEYS) as [keyof OfferFilters, string][]) {
    const value = params.get(key);
    if (value !== null) (filters as Record<string, string>)[field] = value;
  }
  if (!["any", "spot", "on_demand"].includes(filters.spot)) filters.spot = "any";
  const sortKey = params.get("sort") as SortKey | null;
  const sort: Sort = {
    key: sortKey && SORT_KEYS.includes(sortKey) ? sortKey : defaultSort.key,
    order: params.get("order") === "desc" ? "desc" : "asc",
  };
  const offset = Math.max(0, Math.floor(Number(params.get("offset") ?? 0)) || 0);
  return { filters, sort, offset };
}

/** Only what differs from the defaults goes into the URL. */
export function viewToParams(view: OffersView): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [field, key] of Object.entries(URL_KEYS) as [keyof OfferFilters, string][]) {
    const value = view.filters[field];
    if (value !== emptyFilters[field]) out[key] = value;
  }
  if (view.sort.key !== defaultSort.key || view.sort.order !== defaultSort.order) {
    out.sort = view.sort.key;
    out.order = view.sort.order;
  }
  if (view.offset > 0) out.offset = String(view.offset);
  return out;
}
