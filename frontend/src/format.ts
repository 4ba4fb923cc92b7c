/** Display helpers: money, shares, ages, dates. */

const usd4 = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", minimumFractionDigits: 4, maximumFractionDigits: 4 });
const usd2 = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", minimumFractionDigits: 2, maximumFractionDigits: 2 });

/** USD; ``precise`` shows sub-dollar prices to four decimals (cheap GPUs differ in the third). */
export function money(value: number | null | undefined, precise = false): string {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  return (precise && Math.abs(value) < 1 ? usd4 : usd2).format(value);
}

/** A dollar axis tick: as many decimals as the tick's size needs, so sub-dollar axes do not read "$0" at
 * every tick ($1,250 / $12.5 / $0.37 / $0.0925). */
export function dollarTick(value: number): string {
  const size = Math.abs(value);
  const digits = size === 0 || size >= 100 ? 0 : size >= 1 ? 1 : size >= 0.1 ? 2 : 4;
  return `$${value.toLocaleString("en-US", { maximumFractionDigits: digits })}`;
}

export function pct(value: number | null | undefined, digits = 1): string {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  return `${value.toFixed(digits)}%`;
}

/** A 0..1 share as a percentage. */
export function share(value: number | null | undefined): string {
  return value === null || value === undefined ? "—" : pct(value * 100);
}

export function num(value: number | null | undefined, digits = 2): string {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  return Number.isInteger(value) ? value.toLocaleString("en-US") : value.toLocaleString("en-US", { maximumFractionDigits: digits });
}

/** How long ago a price was observed, coarsely: "45s", "12m", "3h", "17d". */
export function age(seconds: number): string {
  if (seconds < 60) return `${Math.round(seconds)}s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)}m`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)}h`;
  return `${Math.round(seconds / 86400)}d`;
}

export function dateTime(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" });
}

/** Split a comma-separated input into trimmed, non-empty items. */
export function csv(text: string): string[] {
  return text.split(",").map((s) => s.trim()).filter(Boolean);
}
