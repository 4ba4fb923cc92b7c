/** Small shared pieces: error banner, status badge, pager. */
import type { JobStatus } from "../api/types";

export function ErrorBanner({ message }: { message: string | null | undefined }) {
  if (!message) return null;
  return (
    <div className="error" role="alert">
      {message}
    </div>
  );
}

export function StatusBadge({ status }: { status: JobStatus | string }) {
  return <span className={`badge badge-${status}`}>{status}</span>;
}

export interface PagerProps {
  total: number;
  limit: number;
  offset: number;
  onOffset: (offset: number) => void;
}

export function Pager({ total, limit, offset, onOffset }: PagerProps) {
  const first = total === 0 ? 0 : offset + 1;
  const last = Math.min(offset + limit, total);
  return (
    <div className="pager">
      <button type="button" className="secondary" disabled={offset === 0} onClick={() => onOffset(Math.max(0, offset - limit))}>
        ‹ Prev
      </button>
      <span>
        {first}–{last} of {total}
      </span>
      <button type="button" className="secondary" disabled={offset + limit >= total} onClick={() => onOffset(offset + limit)}>
        Next ›
      </button>
    </div>
  );
}
