/**
 * Cloudflare Access (identity mode `access`): Access sits in front of the Worker, signs in the user and
 * adds a `Cf-Access-Jwt-Assertion` header to each request it lets through. The Worker verifies that
 * JWT itself (Access may front only some routes, and a workers.dev URL can bypass it):
 *
 * - RS256 only, nothing else (`alg: none`, HS256 "signed" with the public key and the rest are refused);
 * - the key chosen by `kid` from the team's JWKS, `<ACCESS_TEAM_DOMAIN>/cdn-cgi/access/certs`, fetched
 *   and cached; an unknown `kid` refetches it (keys rotate), but at most once per REFETCH_FLOOR, so a
 *   flood of made-up kids cannot make the Worker hammer the team domain;
 * - `iss` equal to the team domain, `aud` containing ACCESS_AUD, `exp` and `nbf` with LEEWAY_MS.
 *
 * The identity is the verified `email` claim (a service token, which has none, is named by its
 * `common_name`), mapped onto the user-id rules by `userIdForEmail` / `userIdForService`.
 */

import { base64urlDecode, decodeJsonPart } from "./tokens";
import { userIdProblem } from "./userid";

/** Clock skew allowed on `exp` and `nbf`. */
export const LEEWAY_MS = 30_000;
/** How long fetched keys are used before they are fetched again. */
export const CERTS_MAX_AGE_MS = 10 * 60_000;
/** The default least time between two fetches of the keys (ACCESS_CERTS_MIN_REFETCH_SECONDS). */
export const DEFAULT_REFETCH_FLOOR_MS = 30_000;
const FETCH_TIMEOUT_MS = 5_000;
const MAX_CERTS_BYTES = 64 * 1024;
const MAX_JWT_LENGTH = 16 * 1024;
const MIN_MODULUS_BYTES = 256; // RSA-2048

const encoder = new TextEncoder();

/** Whether a host name is a loopback address: the only hosts a plain-http team domain may name (tests). */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  return host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * The team domain as an origin ("https://team.cloudflareaccess.com"), or the reason it cannot be one.
 * A bare host name gets https. Plain http is accepted for loopback hosts only.
 */
export function parseTeamDomain(raw: string): { origin: string } | { problem: string } {
  let text = raw.trim();
  if (text === "") return { problem: "it is empty or only whitespace" };
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) text = `https://${text}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { problem: "it is not a URL" };
  }
  if (url.username || url.password || url.search || url.hash || (url.pathname !== "/" && url.pathname !== "")) {
    return { problem: "it must be just the team's origin, like https://<team>.cloudflareaccess.com" };
  }
  if (url.protocol === "http:" && !isLoopbackHost(url.hostname)) {
    return { problem: "it must use https (plain http only for a loopback host)" };
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return { problem: "it must use https" };
  return { origin: url.origin };
}

export interface AccessConfig {
  /** The team domain as an origin: the expected `iss`, and where the keys are. */
  origin: string;
  audience: string;
  refetchFloorMs: number;
}

export interface AccessIdentity {
  userId: string;
  /** What the user id was derived from: "email:<lowercased email>" or "service:<common_name>". */
  principal: string;
  expiresAtMs: number;
}

export type AccessCheck =
  | { ok: true; identity: AccessIdentity }
  | { ok: false; reason: string; unavailable?: boolean };

interface KeySet {
  keys: Map<string, CryptoKey>;
  fetchedAt: number;
}

/**
 * The team's keys, per isolate. `inflight` makes concurrent misses share one fetch; `lastAttempt`
 * (successful or not) is what the refetch floor is measured from.
 */
interface CacheEntry {
  set: KeySet | null;
  lastAttempt: number;
  inflight: Promise<KeySet | null> | null;
}
const caches = new Map<string, CacheEntry>();

/** How many times the keys were fetched from each team domain in this isolate (for tests and logs). */
export function certsFetchCount(origin: string): number {
  return fetches.get(origin) ?? 0;
}
const fetches = new Map<string, number>();

async function importKey(jwk: Record<string, unknown>): Promise<CryptoKey | null> {
  if (jwk.kty !== "RSA" || typeof jwk.n !== "string" || typeof jwk.e !== "string") return null;
  if (jwk.alg !== undefined && jwk.alg !== "RS256") return null;
  if (jwk.use !== undefined && jwk.use !== "sig") return null;
  const modulus = base64urlDecode(jwk.n);
  if (modulus === null || modulus.length < MIN_MODULUS_BYTES) return null;
  try {
    return await crypto.subtle.importKey(
      "jwk",
      { kty: "RSA", n: jwk.n, e: jwk.e, alg: "RS256", ext: true },
      { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
      false,
      ["verify"],
    );
  } catch {
    return null;
  }
}

async function fetchKeys(origin: string): Promise<KeySet | null> {
  fetches.set(origin, (fetches.get(origin) ?? 0) + 1);
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), FETCH_TIMEOUT_MS);
  try {
    const res = await fetch(`${origin}/cdn-cgi/access/certs`, {
      headers: { Accept: "application/json" },
      signal: controller.signal,
      redirect: "manual", // a redirect answers non-200 and is refused below
    });
    if (res.status !== 200) {
      await res.body?.cancel();
      console.warn("access: fetching the team's keys answered", res.status);
      return null;
    }
    const text = await res.text();
    if (text.length > MAX_CERTS_BYTES) return null;
    const body = JSON.parse(text) as { keys?: unknown };
    if (!Array.isArray(body.keys)) return null;
    const keys = new Map<string, CryptoKey>();
    for (const jwk of body.keys) {
      if (jwk === null || typeof jwk !== "object" || typeof (jwk as { kid?: unknown }).kid !== "string") continue;
      const key = await importKey(jwk as Record<string, unknown>);
      if (key) keys.set((jwk as { kid: string }).kid, key);
    }
    return { keys, fetchedAt: Date.now() };
  } catch (err) {
    console.warn("access: fetching the team's keys failed:", err instanceof Error ? err.message : String(err));
    return null;
  } finally {
    clearTimeout(timer);
  }
}

/** Fetches the keys unless a fetch happened within the floor; concurrent callers share one fetch. */
function refresh(entry: CacheEntry, origin: string, floorMs: number, now: number): Promise<KeySet | null> {
  if (entry.inflight) return entry.inflight;
  if (now - entry.lastAttempt < floorMs) return Promise.resolve(entry.set);
  entry.lastAttempt = now;
  entry.inflight = fetchKeys(origin).then((set) => {
    entry.inflight = null;
    // A failed fetch keeps the keys we had: Access's previous key stays valid for days after a rotation.
    if (set) entry.set = set;
    return entry.set;
  });
  return entry.inflight;
}

async function keyFor(config: AccessConfig, kid: string): Promise<CryptoKey | "unknown" | "unavailable"> {
  const now = Date.now();
  let entry = caches.get(config.origin);
  if (!entry) {
    entry = { set: null, lastAttempt: -Infinity, inflight: null };
    caches.set(config.origin, entry);
  }
  let set = entry.set;
  if (set === null || now - set.fetchedAt > CERTS_MAX_AGE_MS || !set.keys.has(kid)) {
    // Expired keys are refetched on the next request, so the floor does not apply to them.
    const floor = set !== null && now - set.fetchedAt > CERTS_MAX_AGE_MS ? 0 : config.refetchFloorMs;
    set = await refresh(entry, config.origin, floor, now);
  }
  if (set === null) return "unavailable";
  return set.keys.get(kid) ?? "unknown";
}

function audienceMatches(aud: unknown, expected: string): boolean {
  if (typeof aud === "string") return aud === expected;
  return Array.isArray(aud) && aud.some((a) => a === expected);
}

/** Verifies a `Cf-Access-Jwt-Assertion` and derives the user id. */
export async function verifyAccessJwt(config: AccessConfig, jwt: string, nowMs: number): Promise<AccessCheck> {
  if (jwt.length > MAX_JWT_LENGTH) return { ok: false, reason: "the Access token is too long" };
  const parts = jwt.split(".");
  if (parts.length !== 3) return { ok: false, reason: "the Access token is not a JWT" };
  const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
  const header = decodeJsonPart(headerPart);
  if (header === null) return { ok: false, reason: "the Access token's header is unreadable" };
  // RS256 and nothing else: the algorithm is never taken from the token.
  if (header.alg !== "RS256") return { ok: false, reason: "the Access token is not signed with RS256" };
  if (header.crit !== undefined) return { ok: false, reason: "the Access token has critical extensions" };
  if (typeof header.kid !== "string" || header.kid === "") return { ok: false, reason: "the Access token names no key" };
  const signature = base64urlDecode(signaturePart);
  if (signature === null || signature.length === 0) return { ok: false, reason: "the Access token's signature is unreadable" };
  const payload = decodeJsonPart(payloadPart);
  if (payload === null) return { ok: false, reason: "the Access token's claims are unreadable" };

  const key = await keyFor(config, header.kid);
  if (key === "unavailable") return { ok: false, reason: "the team's signing keys could not be fetched", unavailable: true };
  if (key === "unknown") return { ok: false, reason: "the Access token is signed with a key the team does not publish" };
  const valid = await crypto.subtle.verify(
    { name: "RSASSA-PKCS1-v1_5" },
    key,
    signature,
    encoder.encode(`${headerPart}.${payloadPart}`),
  );
  if (!valid) return { ok: false, reason: "the Access token's signature does not match" };

  if (payload.iss !== config.origin) return { ok: false, reason: "the Access token is from another issuer" };
  if (!audienceMatches(payload.aud, config.audience)) return { ok: false, reason: "the Access token is for another application" };
  if (typeof payload.exp !== "number" || !Number.isFinite(payload.exp)) return { ok: false, reason: "the Access token has no expiry" };
  if (nowMs >= payload.exp * 1000 + LEEWAY_MS) return { ok: false, reason: "the Access token has expired" };
  if (payload.nbf !== undefined) {
    if (typeof payload.nbf !== "number" || !Number.isFinite(payload.nbf)) return { ok: false, reason: "the Access token's nbf is unreadable" };
    if (nowMs < payload.nbf * 1000 - LEEWAY_MS) return { ok: false, reason: "the Access token is not valid yet" };
  }
  if (typeof payload.iat === "number" && nowMs < payload.iat * 1000 - LEEWAY_MS) {
    return { ok: false, reason: "the Access token is not valid yet" };
  }

  const expiresAtMs = payload.exp * 1000;
  if (typeof payload.email === "string" && payload.email.trim() !== "") {
    const email = normalizeEmail(payload.email);
    return { ok: true, identity: { userId: await userIdForEmail(email), principal: `email:${email}`, expiresAtMs } };
  }
  if (typeof payload.common_name === "string" && payload.common_name.trim() !== "") {
    const name = payload.common_name.trim();
    return { ok: true, identity: { userId: await userIdForService(name), principal: `service:${name}`, expiresAtMs } };
  }
  return { ok: false, reason: "the Access token names no user (no email claim)" };
}

/** Trimmed, Unicode NFC, lower case: one person, one spelling. */
export function normalizeEmail(email: string): string {
  return email.trim().normalize("NFC").toLowerCase();
}

const ID_HASH_HEX = 12;
const DISALLOWED = /[^a-z0-9._-]/g;

async function shortHash(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
  return Array.from(digest.slice(0, ID_HASH_HEX / 2), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The user-id form of a verified name: lower case, every character outside `a-z 0-9 . _ -` replaced
 * by `_`, runs of dots cut to one, a leading dot replaced by `_`, cut to 51 characters (trailing dots
 * dropped), then `-` and the first 12 hex digits of SHA-256 of `hashed` (the whole normalized name with
 * its kind). The hash is always appended, so the result never depends on whether anything was replaced,
 * and it is never longer than 64 characters (a head that would make a Windows device name, such as
 * `con.x`, gets an underscore in front). Two distinct names give the same id only
 * if their cleaned heads agree *and* 48 bits of their hashes collide; even then the object remembers
 * the principal that first used an id and refuses any other (see ledger.ts), so no collision is silent.
 */
async function mapName(name: string, hashed: string): Promise<string> {
  const cleaned = name.toLowerCase().replace(DISALLOWED, "_").replace(/\.{2,}/g, ".").replace(/^\./, "_");
  const head = cleaned.slice(0, 64 - 1 - ID_HASH_HEX).replace(/\.+$/, "") || "user";
  const hash = await shortHash(hashed);
  const id = `${head}-${hash}`;
  // A head such as "con.x" would make a Windows device name: an underscore in front unmakes it.
  return userIdProblem(id) === null ? id : `_${head.slice(0, 50)}-${hash}`;
}

/** The user id for a verified email: `Alice@Example.com` → `alice_example.com-<12 hex>`. */
export async function userIdForEmail(email: string): Promise<string> {
  const normalized = normalizeEmail(email);
  return mapName(normalized, `email:${normalized}`);
}

/** The user id for an Access service token, by its client id: `service-<client id>-<12 hex>`. */
export async function userIdForService(commonName: string): Promise<string> {
  const name = commonName.trim();
  return mapName(`service-${name}`, `service:${name}`);
}
