/**
 * Calls outside the generated client: file downloads (a Blob, not JSON) and routes this build's
 * OpenAPI document may not list yet (an older or newer server). Same credential headers as the client.
 */
import type { AuthStore } from "../auth/store";
import { toApiError } from "./errors";

export async function authedFetch(baseUrl: string, auth: AuthStore, path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  const token = await auth.token();
  if (token && auth.current?.kind === "api_key") headers.set("X-API-Key", token);
  else if (token) headers.set("Authorization", `Bearer ${token}`);
  const response = await fetch(`${baseUrl}${path}`, { ...init, headers });
  if (response.status === 401 && auth.current) auth.signOut();
  return response;
}

/** Throw the API's error (with its message) for a non-2xx answer. */
export async function ensureOk(response: Response): Promise<Response> {
  if (response.ok) return response;
  let body: unknown = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  throw toApiError(body, response);
}

/** Hand a downloaded body to the browser as a file. */
export function saveBlob(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** The file name from Content-Disposition, else the fallback. */
export function filenameOf(response: Response, fallback: string): string {
  const cd = response.headers.get("Content-Disposition") ?? "";
  const m = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(cd);
  return m?.[1] ? decodeURIComponent(m[1]) : fallback;
}
