/** Shared chart look: a colour-blind-safe palette (Okabe-Ito, then Tol) and time ticks. */

const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#332288", "#117733", "#882255", "#999933", "#44AA99", "#AA4499"];

export function colorAt(i: number): string {
  return PALETTE[i % PALETTE.length] ?? "#0072B2";
}

/** "07 Dec 14:00" for ticks of a time axis (values in ms since epoch). */
export function shortTime(t: number): string {
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return "";
  return d.toLocaleString("en-GB", { day: "2-digit", month: "short", hour: "2-digit", minute: "2-digit" });
}
