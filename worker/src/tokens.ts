/**
 * Per-user tokens (identity mode `user-tokens`): the operator's signing secret (EDGECHAT_SIGNING_KEY)
 * signs a small claim set naming one user id, when it was issued and when it expires.
 *
 *   ec1.<base64url(JSON {"v":1,"sub":"alice","iat":<ms>,"exp":<ms>})>.<base64url(HMAC-SHA256)>
 *
 * The MAC covers the text "ec1.<payload>" and is computed with WebCrypto, so the Worker and the
 * `npm run mint-token` script (which bundles this very module) sign the same way. Times are
 * milliseconds since the epoch, so a revocation (a "not before" time) separates tokens issued a moment
 * before it from ones issued a moment after. This module is pure: no runtime imports, no storage.
 */

import { userIdProblem } from "./userid";

export { userIdProblem };

export const TOKEN_PREFIX = "ec1.";
/** A signing secret shorter than this could be guessed offline from one token. */
export const MIN_SIGNING_KEY_LENGTH = 32;
/** Longer presented tokens are refused before any work is spent on them. */
const MAX_TOKEN_LENGTH = 1024;
/** A token issued this far in the future (the minting machine's clock runs ahead) is still accepted. */
export const ISSUED_AT_LEEWAY_MS = 5 * 60 * 1000;

export interface TokenClaims {
  /** The user id, by the user-id rules. */
  sub: string;
  /** Issued at, ms since the epoch. */
  iat: number;
  /** Expires at, ms since the epoch. */
  exp: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

export function base64urlEncode(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Strict base64url (no padding, no other characters); null when `text` is not that. */
export function base64urlDecode(text: string): Uint8Array | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return null;
  const padded = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  let binary: string;
  try {
    binary = atob(padded);
  } catch {
    return null;
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  // Reject non-canonical encodings (stray low bits in the last character): one token, one spelling.
  if (base64urlEncode(bytes) !== text) return null;
  return bytes;
}

/** Decodes base64url JSON into an object, or null. */
export function decodeJsonPart(part: string): Record<string, unknown> | null {
  const bytes = base64urlDecode(part);
  if (bytes === null) return null;
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(bytes));
  } catch {
    return null;
  }
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
}

async function hmacKey(secret: string): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
}

async function mac(secret: string, text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.sign("HMAC", await hmacKey(secret), encoder.encode(text)));
}

/** Compares two byte strings without an early exit; `timingSafeEqual` where the runtime has it (workerd). */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  const subtle = crypto.subtle as SubtleCrypto & { timingSafeEqual?: (a: ArrayBufferView, b: ArrayBufferView) => boolean };
  if (typeof subtle.timingSafeEqual === "function") return subtle.timingSafeEqual(a, b);
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** Why a signing secret cannot be used, or null when it can. Its value never appears in the reason. */
export function signingKeyProblem(secret: string): string | null {
  if (secret.trim() === "") return "it is empty or only whitespace";
  if (secret.trim().length < MIN_SIGNING_KEY_LENGTH) return `it is shorter than ${MIN_SIGNING_KEY_LENGTH} characters`;
  return null;
}

/** Signs a token for `sub`, valid from `iat` until `exp` (ms since the epoch). */
export async function mintToken(secret: string, claims: TokenClaims): Promise<string> {
  const keyProblem = signingKeyProblem(secret);
  if (keyProblem) throw new Error(`the signing key cannot be used: ${keyProblem}`);
  const idProblem = userIdProblem(claims.sub);
  if (idProblem) throw new Error(`invalid user id: ${idProblem}`);
  if (!Number.isSafeInteger(claims.iat) || !Number.isSafeInteger(claims.exp) || claims.exp <= claims.iat) {
    throw new Error("iat and exp must be whole milliseconds, exp after iat");
  }
  const payload = base64urlEncode(encoder.encode(JSON.stringify({ v: 1, sub: claims.sub, iat: claims.iat, exp: claims.exp })));
  const signed = `${TOKEN_PREFIX}${payload}`;
  return `${signed}.${base64urlEncode(await mac(secret.trim(), signed))}`;
}

export type TokenCheck = { ok: true; claims: TokenClaims } | { ok: false; reason: string };

/**
 * Verifies a presented token: the MAC first (compared in constant time), then the claims. The reason
 * of a refusal is for the client's `details`; it never repeats the token or the secret.
 */
export async function verifyToken(secret: string, token: string, nowMs: number): Promise<TokenCheck> {
  if (token.length > MAX_TOKEN_LENGTH || !token.startsWith(TOKEN_PREFIX)) return { ok: false, reason: "not an edgechat user token" };
  const parts = token.slice(TOKEN_PREFIX.length).split(".");
  if (parts.length !== 2) return { ok: false, reason: "not an edgechat user token" };
  const [payloadPart, macPart] = parts as [string, string];
  const presented = base64urlDecode(macPart);
  const expected = await mac(secret.trim(), `${TOKEN_PREFIX}${payloadPart}`);
  if (presented === null || !constantTimeEqual(presented, expected)) return { ok: false, reason: "the token's signature does not match" };
  const payload = decodeJsonPart(payloadPart);
  if (payload === null || payload.v !== 1) return { ok: false, reason: "the token's claims are unreadable" };
  const { sub, iat, exp } = payload;
  if (typeof sub !== "string" || userIdProblem(sub) !== null) return { ok: false, reason: "the token names no valid user id" };
  if (typeof iat !== "number" || typeof exp !== "number" || !Number.isSafeInteger(iat) || !Number.isSafeInteger(exp)) {
    return { ok: false, reason: "the token's times are unreadable" };
  }
  if (nowMs >= exp) return { ok: false, reason: "the token has expired" };
  if (iat > nowMs + ISSUED_AT_LEEWAY_MS) return { ok: false, reason: "the token is not valid yet" };
  return { ok: true, claims: { sub, iat, exp } };
}
