/**
 * The caller's credential: a JWT pair from /auth/login or a pasted API key.
 *
 * Kept in sessionStorage (one browser tab, gone when it closes) rather than localStorage, so a
 * token never outlives the tab that asked for it. Access tokens are short-lived; ``token()``
 * refreshes one shortly before it expires, and concurrent callers share that single refresh.
 */
import type { Tokens } from "../api/types";

export type Credential =
  | { kind: "jwt"; access: string; refresh: string }
  | { kind: "api_key"; key: string };

export type Refresher = (refreshToken: string) => Promise<Tokens>;

const STORAGE_KEY = "cloudarb.credential";
const REFRESH_MARGIN_S = 30;

/** Seconds since the epoch at which a JWT expires, or null when it carries no readable ``exp``. */
export function jwtExpiry(token: string): number | null {
  const part = token.split(".")[1];
  if (!part) return null;
  try {
    const padded = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
    const claims = JSON.parse(atob(padded)) as { exp?: unknown };
    return typeof claims.exp === "number" ? claims.exp : null;
  } catch {
    return null;
  }
}

export class AuthStore {
  private credential: Credential | null;
  private listeners = new Set<() => void>();
  private refreshing: Promise<string | null> | null = null;

  constructor(
    private readonly storage: Storage,
    private readonly refresher: Refresher,
    private readonly now: () => number = () => Date.now() / 1000,
  ) {
    this.credential = AuthStore.load(storage);
  }

  private static load(storage: Storage): Credential | null {
    const raw = storage.getItem(STORAGE_KEY);
    if (!raw) return null;
    try {
      const parsed = JSON.parse(raw) as Credential;
      if (parsed.kind === "jwt" || parsed.kind === "api_key") return parsed;
    } catch {
      /* a corrupt entry is treated as logged out */
    }
    storage.removeItem(STORAGE_KEY);
    return null;
  }

  get current(): Credential | null {
    return this.credential;
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  set(credential: Credential | null): void {
    this.credential = credential;
    if (credential) this.storage.setItem(STORAGE_KEY, JSON.stringify(credential));
    else this.storage.removeItem(STORAGE_KEY);
    this.listeners.forEach((l) => l());
  }

  signInWithTokens(tokens: Tokens): void {
    this.set({ kind: "jwt", access: tokens.access_token, refresh: tokens.refresh_token });
  }

  signInWithApiKey(key: string): void {
    this.set({ kind: "api_key", key: key.trim() });
  }

  signOut(): void {
    this.set(null);
  }

  /** The secret to send now (an API key, or an access token refreshed when close to expiry). */
  async token(): Promise<string | null> {
    const cred = this.credential;
    if (!cred) return null;
    if (cred.kind === "api_key") return cred.key;
    const exp = jwtExpiry(cred.access);
    if (exp === null || exp - this.now() > REFRESH_MARGIN_S) return cred.access;
    return this.refresh();
  }

  /** Trade the refresh token for new tokens; signs out when the server refuses it. */
  refresh(): Promise<string | null> {
    const cred = this.credential;
    if (!cred || cred.kind !== "jwt") return Promise.resolve(cred?.kind === "api_key" ? cred.key : null);
    if (!this.refreshing) {
      this.refreshing = this.refresher(cred.refresh)
        .then((tokens) => {
          this.signInWithTokens(tokens);
          return tokens.access_token;
        })
        .catch(() => {
          this.signOut();
          return null;
        })
        .finally(() => {
          this.refreshing = null;
        });
    }
    return this.refreshing;
  }
}
