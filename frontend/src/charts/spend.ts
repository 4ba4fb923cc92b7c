/** Spend over the month: day boundaries (UTC) to ask ``GET /costs`` about, and the cumulative line. */

/** The start of each UTC day of ``now``'s month up to today, plus the start of tomorrow. */
export function monthDays(now: Date): Date[] {
  const first = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  const out: Date[] = [];
  for (let t = first; t <= today + 86400_000; t += 86400_000) out.push(new Date(t));
  return out;
}

export interface SpendRow {
  t: number;
  day: number;
  cumulative: number;
  /** The budget spread evenly over the month, cumulated: where spend should be to end on the limit. */
  pace?: number;
}

export function cumulativeSpend(days: Date[], daily: number[], monthlyLimit: number | null): SpendRow[] {
  const first = days[0];
  if (!first) return [];
  const daysInMonth = new Date(Date.UTC(first.getUTCFullYear(), first.getUTCMonth() + 1, 0)).getUTCDate();
  let total = 0;
  return daily.map((amount, i) => {
    total += amount;
    const row: SpendRow = { t: days[i]?.getTime() ?? 0, day: amount, cumulative: total };
    if (monthlyLimit !== null) row.pace = (monthlyLimit * (i + 1)) / daysInMonth;
    return row;
  });
}
