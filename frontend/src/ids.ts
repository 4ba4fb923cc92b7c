/**
 * Random ids for Idempotency-Key headers. ``crypto.randomUUID`` exists only in secure contexts
 * (HTTPS or localhost): a dashboard opened over plain HTTP on another host name has
 * ``crypto.getRandomValues`` but no ``randomUUID``, so the v4 UUID is built from random bytes there.
 */

type RandomSource = Pick<Crypto, "getRandomValues"> & { randomUUID?: () => string };

export function uuidFromBytes(bytes: Uint8Array): string {
  const b = Uint8Array.from(bytes.subarray(0, 16));
  b[6] = ((b[6] ?? 0) & 0x0f) | 0x40; // version 4
  b[8] = ((b[8] ?? 0) & 0x3f) | 0x80; // RFC 4122 variant
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function newId(source: RandomSource = globalThis.crypto): string {
  if (typeof source.randomUUID === "function") return source.randomUUID();
  return uuidFromBytes(source.getRandomValues(new Uint8Array(16)));
}
