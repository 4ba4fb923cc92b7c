/** How fresh each provider's prices are (``GET /providers``): state, newest price, last refresh and error;
 * read again after each live price change, since a change means a refresh just stored prices. */
import { unwrap } from "../api/errors";
import type { components } from "../api/schema";
import { age, dateTime, num } from "../format";
import { useAsync } from "../hooks/useAsync";
import { useServices } from "../services";
import { ErrorBanner } from "./common";

type Provider = components["schemas"]["ProviderOut"];

/** "fresh" when the newest price is younger than the provider's max age, "failing" after errors. */
export function freshness(p: Provider, nowMs: number = Date.now()): "fresh" | "stale" | "failing" | "none" {
  if (p.consecutive_failures > 0 && p.last_error) return "failing";
  if (!p.newest_observed_at) return "none";
  const ageS = (nowMs - Date.parse(p.newest_observed_at)) / 1000;
  return ageS <= p.max_age_s ? "fresh" : "stale";
}

const CLASS = { fresh: "fresh-ok", stale: "fresh-stale", failing: "fresh-failing", none: "muted" } as const;

/** ``refreshKey``: read the providers again when it changes (the prices page passes its newest live change). */
export function ProviderFreshness({ refreshKey = 0 }: { refreshKey?: number } = {}) {
  const { api } = useServices();
  const providers = useAsync(async () => unwrap(await api.GET("/providers", {})), [refreshKey]);
  return (
    <div className="chart-panel">
      <h3>Provider freshness</h3>
      <ErrorBanner message={providers.error} />
      {providers.data && (
        <div className="scroll">
          <table className="data" aria-label="provider freshness">
            <thead>
              <tr>
                <th>Provider</th>
                <th>Prices</th>
                <th className="num">Offers</th>
                <th className="num">Newest price age</th>
                <th>Last refresh</th>
                <th>Last error</th>
              </tr>
            </thead>
            <tbody>
              {providers.data.map((p) => {
                const state = freshness(p);
                return (
                  <tr key={p.provider}>
                    <td>{p.provider}</td>
                    <td className={CLASS[state]}>{state === "none" ? "no prices" : state}</td>
                    <td className="num">{num(p.current_offers)}</td>
                    <td className="num">
                      {p.newest_observed_at ? age((Date.now() - Date.parse(p.newest_observed_at)) / 1000) : "—"}
                    </td>
                    <td>{dateTime(p.last_success_at)}</td>
                    <td className="muted">{p.last_error ? `${p.last_error.slice(0, 80)} (${dateTime(p.last_error_at)})` : "—"}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
