/** Render screens against a scripted fetch: every request is recorded, every answer comes from a handler. */
import { render } from "@testing-library/react";
import type { ReactElement } from "react";
import { createApi, createPublicApi } from "../api/client";
import { AuthStore } from "../auth/store";
import { ServicesProvider, type Services } from "../services";
import { FakeSocket } from "./fakeSocket";

export const BASE = "http://api.test/api";

export type Handler = (req: Request, url: URL) => Response | Promise<Response>;

export function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

export function fakeServices(handler: Handler) {
  const requests: Request[] = [];
  const fetchImpl = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const req = input instanceof Request ? input : new Request(input, init);
    requests.push(req.clone());
    return handler(req, new URL(req.url));
  }) as typeof fetch;
  const publicApi = createPublicApi(BASE, fetchImpl);
  const auth = new AuthStore(sessionStorage, async () => {
    throw new Error("no refresh in tests");
  });
  auth.signInWithApiKey("ca_test");
  const services: Services = { api: createApi(BASE, auth, fetchImpl), publicApi, auth, baseUrl: BASE, WebSocketImpl: FakeSocket };
  return { services, requests };
}

export function renderWith(ui: ReactElement, handler: Handler) {
  const { services, requests } = fakeServices(handler);
  const view = render(<ServicesProvider services={services}>{ui}</ServicesProvider>);
  return { ...view, requests, services };
}
