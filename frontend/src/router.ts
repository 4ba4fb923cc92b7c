/** A hash router (``#/offers``, ``#/optimizations/<id>``): enough for a handful of screens, no dependency. */
import { useEffect, useState } from "react";

function segments(): string[] {
  return window.location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
}

export function useRoute(): string[] {
  const [route, setRoute] = useState(segments);
  useEffect(() => {
    const onChange = () => setRoute(segments());
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return route;
}

export function navigate(path: string): void {
  window.location.hash = path.startsWith("/") ? path : `/${path}`;
}

export function href(path: string): string {
  return `#${path.startsWith("/") ? path : `/${path}`}`;
}
