/**
 * Live price changes over ``/ws/prices`` for the prices screen. A dropped connection reconnects
 * with ``after=<last id>``, so the server replays what was missed; ids already seen are dropped.
 */
import { useEffect, useRef, useState } from "react";
import { priceSocket } from "../api/client";
import type { PriceChange } from "../charts/priceSeries";
import { useServices } from "../services";

export type LiveState = "connecting" | "open" | "reconnecting" | "closed";

const KEEP = 100;
const RETRY_MS = [1000, 2000, 5000, 10000];

export function usePriceStream(filter: { gpuModel?: string; provider?: string }, onChange?: (c: PriceChange) => void) {
  const { auth, baseUrl, WebSocketImpl } = useServices();
  const [changes, setChanges] = useState<PriceChange[]>([]);
  const [state, setState] = useState<LiveState>("connecting");
  const { gpuModel, provider } = filter;
  const onChangeRef = useRef(onChange);
  onChangeRef.current = onChange;

  useEffect(() => {
    let stopped = false;
    let socket: { close: () => void } | null = null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let lastId = 0;
    let attempt = 0;
    setChanges([]);

    const connect = async () => {
      const token = await auth.token();
      if (stopped || !token) return;
      const target = priceSocket(baseUrl, token, { gpuModel, provider, after: lastId });
      const Impl = WebSocketImpl ?? (WebSocket as unknown as NonNullable<typeof WebSocketImpl>);
      const ws = new Impl(target.url, target.protocols);
      socket = ws;
      ws.onopen = () => {
        attempt = 0;
        setState("open");
      };
      ws.onmessage = (ev: MessageEvent) => {
        let change: PriceChange;
        try {
          change = JSON.parse(String(ev.data)) as PriceChange;
        } catch {
          return;
        }
        if (typeof change.id === "number") {
          if (change.id <= lastId) return;
          lastId = change.id;
        }
        setChanges((prev) => [change, ...prev].slice(0, KEEP));
        onChangeRef.current?.(change);
      };
      ws.onclose = (ev: CloseEvent) => {
        if (stopped) return;
        if (ev.code === 4401) {
          setState("closed");
          return;
        }
        setState("reconnecting");
        timer = setTimeout(() => void connect(), RETRY_MS[Math.min(attempt++, RETRY_MS.length - 1)]);
      };
      ws.onerror = () => undefined;
    };
    setState("connecting");
    void connect();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      socket?.close();
    };
  }, [auth, baseUrl, WebSocketImpl, gpuModel, provider]);

  return { changes, state };
}
