/**
 * A hash router (``#/offers?gpu=H100+SXM``, ``#/optimizations/<id>``): enough for a handful of
 * screens, no dependency. A screen's filters live in the hash's query, so a reload, a bookmark or a
 * shared link shows the same view.
 */
import { useCallback, useEffect, useState } from "react";

interface Location {
  segments: string[];
  params: URLSearchParams;
}

function parse(): Location {
  const raw = window.location.hash.replace(/^#\/?/, "");
  const q = raw.indexOf("?");
  const path = q < 0 ? raw : raw.slice(0, q);
  const query = q < 0 ? "" : raw.slice(q + 1);
  return { segments: path.split("/").filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(query) };
}

function useLocation(): Location {
  const [loc, setLoc] = useState(parse);
  useEffect(() => {
    const onChange = () => setLoc(parse());
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return loc;
}

export function useRoute(): string[] {
  return useLocation().segments;
}

/** The current screen's query parameters, and a setter that writes them into the URL (replacing
 * the history entry, so each keystroke of a filter is not a step of the back button). */
export function useQueryParams(): [URLSearchParams, (next: URLSearchParams | Record<string, string>) => void] {
  const loc = useLocation();
  const set = useCallback((next: URLSearchParams | Record<string, string>) => {
    const params = next instanceof URLSearchParams ? next : new URLSearchParams(next);
    for (const [k, v] of [...params.entries()]) if (v === "") params.delete(k);
    const path = window.location.hash.replace(/^#/, "").split("?")[0] || "/";
    const query = params.toString();
    const url = `${window.location.pathname}${window.location.search}#${path}${query ? `?${query}` : ""}`;
    window.history.replaceState(window.history.state, "", url);
    window.dispatchEvent(new HashChangeEvent("hashchange"));
  }, []);
  return [loc.params, set];
}

export function navigate(path: string): void {
  window.location.hash = path.startsWith("/") ? path : `/${path}`;
}

export function href(path: string, params?: Record<string, string>): string {
  const query = params ? new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "")).toString() : "";
  return `#${path.startsWith("/") ? path : `/${path}`}${query ? `?${query}` : ""}`;
}
