/**
 * The typed HTTP client: openapi-fetch over the generated ``schema.d.ts``, so every path, query
 * parameter and body is checked against the server's OpenAPI document at compile time.
 */
import createClient, { type Client, type Middleware } from "openapi-fetch";
import type { AuthStore } from "../auth/store";
import { toApiError } from "./errors";
import type { paths } from "./schema";
import type { Tokens } from "./types";

export type Api = Client<paths>;

/** Where the API lives: ``VITE_API_BASE`` at build time, else ``/api`` on this origin (proxied). */
export function apiBase(): string {
  const configured = (import.meta.env.VITE_API_BASE as string | undefined) ?? "/api";
  return new URL(configured, window.location.origin).toString().replace(/\/$/, "");
}

function authMiddleware(auth: AuthStore): Middleware {
  return {
    async onRequest({ request }) {
      const token = await auth.token();
      const cred = auth.current;
      if (token && cred?.kind === "api_key") request.headers.set("X-API-Key", token);
      else if (token) request.headers.set("Authorization", `Bearer ${token}`);
      return request;
    },
    async onResponse({ response }) {
      if (response.status === 401 && auth.current) auth.signOut();
      return response;
    },
  };
}

export function createApi(baseUrl: string, auth: AuthStore, fetchImpl?: typeof fetch): Api {
  const client = createClient<paths>({ baseUrl, ...(fetchImpl ? { fetch: fetchImpl } : {}) });
  client.use(authMiddleware(auth));
  return client;
}

/** A client without credentials, for login and token refresh (which must not recurse into auth). */
export function createPublicApi(baseUrl: string, fetchImpl?: typeof fetch): Api {
  return createClient<paths>({ baseUrl, ...(fetchImpl ? { fetch: fetchImpl } : {}) });
}

export function refresherFor(publicApi: Api): (refreshToken: string) => Promise<Tokens> {
  return async (refreshToken) => {
    const res = await publicApi.POST("/auth/refresh", { body: { refresh_token: refreshToken } });
    if (!res.data) throw toApiError(res.error, res.response);
    return res.data;
  };
}

/** The job's WebSocket on the same base as the HTTP API. Browsers cannot set headers on a WebSocket,
 * so the credential travels as the second of two subprotocols (``cloudarb.bearer``, then the token),
 * never in the URL, where access logs and browser history would keep it. */
export function jobSocket(baseUrl: string, jobId: string, token: string, after: number): { url: string; protocols: string[] } {
  const url = new URL(`${baseUrl}/ws/jobs/${encodeURIComponent(jobId)}`);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  if (after > 0) url.searchParams.set("after", String(after));
  return { url: url.toString(), protocols: ["cloudarb.bearer", token] };
}

/** The live price-change socket (``/ws/prices``), narrowed by GPU model or provider; credential as for jobs. */
export function priceSocket(
  baseUrl: string,
  token: string,
  filter: { gpuModel?: string; provider?: string; after?: number },
): { url: string; protocols: string[] } {
  const url = new URL(`${baseUrl}/ws/prices`);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  if (filter.gpuModel) url.searchParams.set("gpu_model", filter.gpuModel);
  if (filter.provider) url.searchParams.set("provider", filter.provider);
  if (filter.after && filter.after > 0) url.searchParams.set("after", String(filter.after));
  return { url: url.toString(), protocols: ["cloudarb.bearer", token] };
}
