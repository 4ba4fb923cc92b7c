/** Current offers: filter, sort and page through the latest price of every offer, with its age.
 * Filters, sort and page live in the URL (``#/offers?gpu=H100+SXM&market=spot``). */
import { useState, type FormEvent } from "react";
import { unwrap } from "../api/errors";
import type { Offer } from "../api/types";
import { ErrorBanner, Pager } from "../components/common";
import { age, money, num } from "../format";
import { useAsync } from "../hooks/useAsync";
import { href, useQueryParams } from "../router";
import { useServices } from "../services";
import { buildOffersQuery, emptyFilters, toggleSort, viewFromParams, viewToParams, type OfferFilters, type OffersView, type SortKey } from "./offersQuery";

const PAGE = 50;
const STALE_AFTER_S = 24 * 3600;

interface Column {
  label: string;
  sort?: SortKey;
  numeric?: boolean;
  cell: (o: Offer) => React.ReactNode;
}

const COLUMNS: Column[] = [
  { label: "Provider", cell: (o) => o.provider },
  { label: "Region", cell: (o) => o.region || "—" },
  { label: "Instance", cell: (o) => <code>{o.instance_type}</code> },
  { label: "GPU", cell: (o) => <a href={href("/prices", { gpu: o.gpu_model })} title="price history of this GPU">{o.gpu_model}</a> },
  { label: "GPUs", sort: "gpu_count", numeric: true, cell: (o) => o.gpu_count },
  { label: "VRAM/GPU", sort: "vram_gb", numeric: true, cell: (o) => `${num(o.vram_gb, 0)} GB` },
  { label: "vCPU", numeric: true, cell: (o) => num(o.vcpus, 0) },
  { label: "RAM", numeric: true, cell: (o) => (o.ram_gb === null ? "—" : `${num(o.ram_gb, 0)} GB`) },
  { label: "Market", cell: (o) => (o.spot ? <span className="tag tag-spot">spot</span> : "on-demand") },
  { label: "$/hour", sort: "price_per_hour", numeric: true, cell: (o) => money(o.price_per_hour, true) },
  { label: "$/GPU-hour", sort: "price_per_gpu_hour", numeric: true, cell: (o) => money(o.price_per_gpu_hour, true) },
  {
    label: "History",
    cell: (o) => <a href={href("/prices", { offer: o.offer_key })} aria-label={`price history of ${o.instance_type}`}>chart</a>,
  },
  {
    label: "Price age",
    sort: "observed_at",
    numeric: true,
    cell: (o) => (
      <span className={o.age_s > STALE_AFTER_S ? "stale" : undefined} title={o.observed_at}>
        {age(o.age_s)}
      </span>
    ),
  },
];

/** The GPU models the server knows (``GET /gpus``), for the GPU filter's list. */
function useGpuNames(): string[] {
  const { api } = useServices();
  const gpus = useAsync(async () => unwrap(await api.GET("/gpus", { params: { query: { all: false } } })), []);
  // One option per name: a list with a missing or repeated name would give React duplicate keys.
  return [...new Set((gpus.data?.items ?? []).map((g) => g.name).filter((n): n is string => Boolean(n)))].sort();
}

function FilterForm({ initial, onApply }: { initial: OfferFilters; onApply: (f: OfferFilters) => void }) {
  const [draft, setDraft] = useState(initial);
  const gpuNames = useGpuNames();
  const field = (key: keyof OfferFilters) => ({
    value: draft[key],
    onChange: (e: React.ChangeEvent<HTMLInputElement | HTMLSelectElement>) => setDraft({ ...draft, [key]: e.target.value }),
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    onApply(draft);
  };
  return (
    <form className="filters" onSubmit={submit} aria-label="offer filters">
      <label>
        Provider <input placeholder="aws, gcp" {...field("provider")} />
      </label>
      <label>
        GPU type
        <select {...field("gpuType")}>
          <option value="">any</option>
          {draft.gpuType && !gpuNames.includes(draft.gpuType) && <option value={draft.gpuType}>{draft.gpuType}</option>}
          {gpuNames.map((n) => (
            <option key={n} value={n}>
              {n}
            </option>
          ))}
        </select>
      </label>
      <label>
        Region <input placeholder="us-east-1" {...field("region")} />
      </label>
      <label>
        Min VRAM/GPU (GB) <input type="number" min="0" step="any" {...field("minVramGb")} />
      </label>
      <label>
        Max $/hour <input type="number" min="0" step="any" {...field("maxPrice")} />
      </label>
      <label>
        Max $/GPU-hour <input type="number" min="0" step="any" {...field("maxPricePerGpu")} />
      </label>
      <label>
        Market
        <select {...field("spot")}>
          <option value="any">any</option>
          <option value="on_demand">on-demand</option>
          <option value="spot">spot</option>
        </select>
      </label>
      <label>
        Max price age (h) <input type="number" min="0" step="any" {...field("maxAgeHours")} />
      </label>
      <div className="filter-actions">
        <button type="submit">Apply</button>
        <button
          type="button"
          className="secondary"
          onClick={() => {
            setDraft(emptyFilters);
            onApply(emptyFilters);
          }}
        >
          Reset
        </button>
      </div>
    </form>
  );
}

export function OffersPage() {
  const { api } = useServices();
  const [params, setParams] = useQueryParams();
  const view = viewFromParams(params);
  const { filters, sort, offset } = view;
  const update = (patch: Partial<OffersView>) => setParams(viewToParams({ ...view, ...patch }));
  const query = buildOffersQuery(filters, sort, PAGE, offset);
  const page = useAsync(
    async () => unwrap(await api.GET("/offers", { params: { query } })),
    [JSON.stringify(query)],
  );

  return (
    <section>
      <h1>Offers</h1>
      <FilterForm key={JSON.stringify(filters)} initial={filters} onApply={(f) => update({ filters: f, offset: 0 })} />
      <ErrorBanner message={page.error} />
      {page.data?.stale_prices && (
        <p className="stale-banner" role="status">
          Stale prices: {page.data.stale_prices}
        </p>
      )}
      {page.data && (
        <>
          <div className="scroll">
          <table className="data">
            <thead>
              <tr>
                {COLUMNS.map((c) => (
                  <th key={c.label} className={c.numeric ? "num" : undefined} aria-sort={c.sort && sort.key === c.sort ? (sort.order === "asc" ? "ascending" : "descending") : undefined}>
                    {c.sort ? (
                      <button
                        type="button"
                        className="sort"
                        onClick={() => update({ sort: toggleSort(sort, c.sort as SortKey), offset: 0 })}
                      >
                        {c.label}
                        {sort.key === c.sort ? (sort.order === "asc" ? " ▲" : " ▼") : ""}
                      </button>
                    ) : (
                      c.label
                    )}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {page.data.items.map((o) => (
                <tr key={o.offer_key}>
                  {COLUMNS.map((c) => (
                    <td key={c.label} className={c.numeric ? "num" : undefined}>
                      {c.cell(o)}
                    </td>
                  ))}
                </tr>
              ))}
              {page.data.items.length === 0 && (
                <tr>
                  <td colSpan={COLUMNS.length} className="empty">
                    No offers match these filters.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
          </div>
          <Pager total={page.data.total} limit={PAGE} offset={offset} onOffset={(o) => update({ offset: o })} />
        </>
      )}
      {page.loading && !page.data && <p className="muted">Loading offers…</p>}
    </section>
  );
}
