/** What every screen needs (the API client, the credential, the socket factory), passed by context. */
import { createContext, useContext, useSyncExternalStore, type ReactNode } from "react";
import type { Api } from "./api/client";
import type { AuthStore, Credential } from "./auth/store";
import type { SocketFactory } from "./hooks/jobStream";

export interface Services {
  api: Api;
  /** Credential-free client for login and refresh. */
  publicApi: Api;
  auth: AuthStore;
  /** Absolute base URL of the API (the WebSocket URL is derived from it). */
  baseUrl: string;
  WebSocketImpl?: SocketFactory;
}

const ServicesContext = createContext<Services | null>(null);

export function ServicesProvider({ services, children }: { services: Services; children: ReactNode }) {
  return <ServicesContext.Provider value={services}>{children}</ServicesContext.Provider>;
}

export function useServices(): Services {
  const services = useContext(ServicesContext);
  if (!services) throw new Error("useServices outside ServicesProvider");
  return services;
}

export function useCredential(): Credential | null {
  const { auth } = useServices();
  return useSyncExternalStore(
    (listener) => auth.subscribe(listener),
    () => auth.current,
  );
}
