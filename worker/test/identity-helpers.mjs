// Credentials for the identity tests: per-user tokens (signed by the Worker's own tokens.ts, bundled in
// dist/units.js) and a stand-in Cloudflare Access team domain on a loopback port that serves its keys
// at /cdn-cgi/access/certs and signs RS256 JWTs the way Access does.

import { createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, sign } from "node:crypto";
import { createServer } from "node:http";
import { mintToken } from "../dist/units.js";

export const SIGNING_KEY = "test-signing-key-0123456789abcdefghijklmnop";
export const ADMIN_TOKEN = "test-admin-token-kept-apart-from-the-signing-key";
export const AUD = "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2";

const DAY = 86_400_000;

/** A per-user token; `iat`/`exp` are ms and default to now and now + 90 days. */
export function userToken(sub, { iat = Date.now(), exp = iat + 90 * DAY, key = SIGNING_KEY } = {}) {
  return mintToken(key, { sub, iat, exp });
}

export function bearer(token) {
  return { Authorization: `Bearer ${token}` };
}

export function b64url(data) {
  return Buffer.from(typeof data === "string" ? data : JSON.stringify(data)).toString("base64url");
}

/** An RSA key pair as Access publishes it: a JWK with kid for the JWKS, the private key for signing. */
export function accessKey(kid = randomUUID()) {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const jwk = { ...publicKey.export({ format: "jwk" }), kid, alg: "RS256", use: "sig" };
  return { kid, privateKey, publicKey, jwk };
}

/** Signs a JWT; `header` overrides the RS256 header (its `kid` defaults to the key's). */
export function signJwt(key, claims, header = {}) {
  const head = b64url({ alg: "RS256", kid: key.kid, typ: "JWT", ...header });
  const body = b64url(claims);
  const signature = sign("RSA-SHA256", Buffer.from(`${head}.${body}`), key.privateKey).toString("base64url");
  return `${head}.${body}.${signature}`;
}

/** An HS256 JWT "signed" with a public key's text: the classic algorithm-confusion forgery. */
export function hs256WithPublicKey(key, claims) {
  const head = b64url({ alg: "HS256", kid: key.kid, typ: "JWT" });
  const body = b64url(claims);
  const pem = key.publicKey.export({ format: "pem", type: "spki" });
  const signature = createHmac("sha256", pem).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${signature}`;
}

/** An unsigned JWT (`alg: none`). */
export function unsignedJwt(kid, claims) {
  return `${b64url({ alg: "none", kid, typ: "JWT" })}.${b64url(claims)}.`;
}

/**
 * A loopback stand-in for `https://<team>.cloudflareaccess.com`. `keys` is the list of keys its JWKS
 * publishes (change it to rotate); `fetches` counts requests for the JWKS; `up = false` makes it 500.
 */
export async function startTeamDomain(keys) {
  const team = { keys, fetches: 0, up: true, origin: "", server: null };
  team.server = createServer((req, res) => {
    if (req.url !== "/cdn-cgi/access/certs") {
      res.writeHead(404).end();
      return;
    }
    team.fetches++;
    if (!team.up) {
      res.writeHead(500).end("down");
      return;
    }
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ keys: team.keys.map((k) => k.jwk), public_cert: { kid: team.keys[0]?.kid, cert: "ignored" } }));
  });
  await new Promise((resolve) => team.server.listen(0, "127.0.0.1", resolve));
  team.origin = `http://127.0.0.1:${team.server.address().port}`;
  team.close = () => new Promise((resolve) => team.server.close(resolve));
  return team;
}

/** Access-style claims for an email, valid for an hour from now unless overridden. */
export function accessClaims(team, email, overrides = {}) {
  const now = Math.floor(Date.now() / 1000);
  return {
    aud: [AUD],
    email,
    exp: now + 3600,
    iat: now,
    nbf: now,
    iss: team.origin,
    type: "app",
    identity_nonce: "nonce",
    sub: randomUUID(),
    country: "XX",
    ...overrides,
  };
}

export function accessHeader(jwt) {
  return { "Cf-Access-Jwt-Assertion": jwt };
}

export { createPrivateKey, createPublicKey };
