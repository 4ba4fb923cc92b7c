import { describe, expect, it, vi } from "vitest";
import { AuthStore, jwtExpiry } from "./store";

function jwt(exp: number): string {
  const part = (o: object) => btoa(JSON.stringify(o)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
  return `${part({ alg: "HS256" })}.${part({ sub: "u", exp })}.sig`;
}

describe("AuthStore", () => {
  it("reads a JWT's expiry", () => {
    expect(jwtExpiry(jwt(1234))).toBe(1234);
    expect(jwtExpiry("not-a-jwt")).toBeNull();
  });

  it("uses a fresh access token as is and refreshes one about to expire, once for concurrent callers", async () => {
    const now = 1_000_000;
    const refresher = vi.fn(async () => ({ access_token: jwt(now + 900), refresh_token: "r2", token_type: "bearer", expires_in: 900 }));
    const store = new AuthStore(sessionStorage, refresher, () => now);
    store.set({ kind: "jwt", access: jwt(now + 600), refresh: "r1" });
    expect(await store.token()).toBe(jwt(now + 600));
    expect(refresher).not.toHaveBeenCalled();

    store.set({ kind: "jwt", access: jwt(now + 10), refresh: "r1" });
    const [a, b] = await Promise.all([store.token(), store.token()]);
    expect(a).toBe(jwt(now + 900));
    expect(b).toBe(a);
    expect(refresher).toHaveBeenCalledTimes(1);
    expect(refresher).toHaveBeenCalledWith("r1");
    expect(store.current).toEqual({ kind: "jwt", access: jwt(now + 900), refresh: "r2" });
  });

  it("signs out when the refresh is refused, and survives a reload through sessionStorage", async () => {
    const store = new AuthStore(sessionStorage, async () => {
      throw new Error("401");
    }, () => 2_000_000);
    store.signInWithApiKey("  ca_key ");
    expect(new AuthStore(sessionStorage, vi.fn()).current).toEqual({ kind: "api_key", key: "ca_key" });
    store.set({ kind: "jwt", access: jwt(1), refresh: "r" });
    expect(await store.token()).toBeNull();
    expect(store.current).toBeNull();
    expect(sessionStorage.length).toBe(0);
  });
});
