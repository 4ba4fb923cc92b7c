/** The last request built on the optimize screen, offered as the starting point of a new policy. */
import type { OptimizeRequest } from "./api/types";

const KEY = "cloudarb.draft-request";

export function saveDraft(request: OptimizeRequest): void {
  sessionStorage.setItem(KEY, JSON.stringify(request));
}

export function loadDraft(): OptimizeRequest | null {
  const raw = sessionStorage.getItem(KEY);
  if (!raw) return null;
  try {
    return JSON.parse(raw) as OptimizeRequest;
  } catch {
    return null;
  }
}
