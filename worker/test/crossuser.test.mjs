// A randomized cross-user test: attackers holding valid credentials of their own (and forged, expired,
// revoked or foreign ones) try to read or write victims' conversations on every route, in every
// identity mode, and not one attempt may succeed. Victims' conversations hold secrets no attacker
// ever sends; an attempt "leaks" if a victim-directed request is answered 2xx, if any answer carries a
// victim's secret, or if a victim's stored conversation changes.
//
// CROSS_USER_ATTEMPTS (default 1200) and CROSS_USER_SEED (default 12) replay or widen a run.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { startAgent } from "../scripts/harness.mjs";
import { userIdForEmail } from "../dist/units.js";
import {
  ADMIN_TOKEN,
  AUD,
  SIGNING_KEY,
  accessClaims,
  accessHeader,
  accessKey,
  b64url,
  bearer,
  hs256WithPublicKey,
  signJwt,
  startTeamDomain,
  unsignedJwt,
  userToken,
} from "./identity-helpers.mjs";

const ATTEMPTS = Number(process.env.CROSS_USER_ATTEMPTS ?? 1200);
const SEED = Number(process.env.CROSS_USER_SEED ?? 12);

function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const published = accessKey("team-key-1");
const rotated = accessKey("team-key-2");
const attackerKey = accessKey("team-key-1"); // a kid the team publishes, a key it does not

let team;
const agents = {};
before(async () => {
  team = await startTeamDomain([published, rotated]);
  [agents.userTokens, agents.access, agents.token] = await Promise.all([
    startAgent({ vars: { EDGECHAT_SIGNING_KEY: SIGNING_KEY, EDGECHAT_ADMIN_TOKEN: ADMIN_TOKEN } }),
    startAgent({ vars: { ACCESS_TEAM_DOMAIN: team.origin, ACCESS_AUD: AUD } }),
    startAgent({ token: "the-shared-token-nobody-here-holds" }),
  ]);
});
after(async () => {
  await Promise.all(Object.values(agents).map((a) => a.dispose()));
  await team?.close();
});

/** One user of a mode: their id, a credential's headers, and (victims) their secret. */
async function userTokensUser(name) {
  return { name, userId: name, headers: bearer(await userToken(name)) };
}
async function accessUser(email) {
  const userId = await userIdForEmail(email);
  return { name: email, userId, email, headers: accessHeader(signJwt(published, accessClaims(team, email))) };
}

async function send(agent, { method, path, body, headers = {}, stream = false }) {
  const init = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  if (stream) init.headers.Accept = "text/event-stream";
  const res = await agent.fetch(path, init);
  return { status: res.status, text: await res.text() };
}

/** Ways of naming a victim that a lax comparison might let through. */
function victimSpellings(id, pick) {
  return pick([id, id.toUpperCase(), ` ${id}`, `${id} `, `${id}\u0000`, `./${id}`, `${id}/`, id.normalize("NFKD")]);
}

/** Requests a holder of `cred` might aim at `victim`'s conversation; each must be refused. */
function victimRoutes(victimId, cred, pick) {
  const id = pick([victimId, victimId, victimSpellings(victimId, pick)]);
  return pick([
    { method: "POST", path: "/api/chat", body: { userId: id, message: "let me in" }, headers: cred },
    { method: "POST", path: "/api/chat", body: { userId: id, message: "let me in" }, headers: cred, stream: true },
    { method: "POST", path: "/api/chat", body: { userId: id, message: "keyed" }, headers: { ...cred, "Idempotency-Key": "seed-key" } },
    { method: "GET", path: `/api/history?userId=${encodeURIComponent(id)}`, headers: cred },
    { method: "GET", path: `/api/history?userId=${encodeURIComponent(id)}&limit=1`, headers: cred },
    { method: "POST", path: "/api/reset", body: { userId: id }, headers: cred },
    { method: "GET", path: `/api/whoami?userId=${encodeURIComponent(id)}`, headers: cred },
  ]);
}

describe("cross-user attempts", () => {
  it(`${ATTEMPTS}+ randomized attempts over every route and mode: 0 read or write another user's data`, async (t) => {
    const random = rng(SEED);
    const pick = (list) => list[Math.floor(random() * list.length)];

    // --- the people -------------------------------------------------------------------------------
    const modes = {
      userTokens: {
        agent: agents.userTokens,
        victims: await Promise.all(["vera", "victor", "valerie"].map(userTokensUser)),
        attackers: await Promise.all(["mallory", "trudy", "oscar"].map(userTokensUser)),
      },
      access: {
        agent: agents.access,
        victims: await Promise.all(["vera@example.com", "victor@example.org", "v.a+lerie@example.com"].map(accessUser)),
        attackers: await Promise.all(["mallory@example.com", "trudy@evil.example", "VERA@example.com.evil"].map(accessUser)),
      },
    };
    // Victims write their secrets, each under the same idempotency key an attacker will reuse.
    const secrets = new Map();
    for (const [mode, m] of Object.entries(modes)) {
      for (const v of m.victims) {
        const secret = `secret-${mode}-${v.userId}-${randomBytes(6).toString("hex")}`;
        secrets.set(secret, v);
        v.secret = secret;
        const res = await send(m.agent, { method: "POST", path: "/api/chat", body: { message: secret }, headers: { ...v.headers, "Idempotency-Key": "seed-key" } });
        assert.equal(res.status, 200, res.text);
      }
    }
    // One victim per identity mode had a token stolen before it was revoked.
    const revokedVictim = modes.userTokens.victims[2];
    const stolen = revokedVictim.headers;
    const revoked = await send(agents.userTokens, { method: "POST", path: "/api/admin/revoke", body: { userId: revokedVictim.userId }, headers: bearer(ADMIN_TOKEN) });
    assert.equal(revoked.status, 200);
    // The victim gets a new token, issued after the revocation.
    const notBefore = Date.parse(JSON.parse(revoked.text).notBefore);
    revokedVictim.headers = bearer(await userToken(revokedVictim.userId, { iat: Math.max(Date.now(), notBefore) + 1 }));

    const snapshot = async () => {
      const out = new Map();
      for (const m of Object.values(modes)) {
        for (const v of m.victims) {
          const res = await send(m.agent, { method: "GET", path: "/api/history", headers: v.headers });
          // A victim locked out of their own conversation counts as changed.
          out.set(v.userId, `${res.status} ${res.text.replace(/"time":"[^"]*"/g, "")}`);
        }
      }
      return out;
    };
    const before = await snapshot();

    // --- credentials an attacker may hold for a victim, none of them the victim's own ----------------
    async function forgedUserTokens(victim, attacker) {
      const own = attacker.headers.Authorization.slice(7);
      const [, payload, mac] = own.split(".");
      const claims = JSON.parse(Buffer.from(payload, "base64url"));
      return pick([
        `ec1.${b64url({ ...claims, sub: victim.userId })}.${mac}`,
        await userToken(victim.userId, { key: "a-signing-key-the-attacker-made-up-himself" }),
        await userToken(victim.userId, { iat: Date.now() - 100_000, exp: Date.now() - 1 }),
        ADMIN_TOKEN,
        SIGNING_KEY,
        `ec1.${b64url({ v: 1, sub: victim.userId, iat: Date.now(), exp: Date.now() + 1e9 })}.`,
        stolen.Authorization.slice(7), // revoked
      ]);
    }
    function forgedAccessJwts(victim, attacker) {
      const claims = accessClaims(team, victim.email);
      const ownJwt = attacker.headers["Cf-Access-Jwt-Assertion"];
      const [h, , s] = ownJwt.split(".");
      const now = Math.floor(Date.now() / 1000);
      return pick([
        signJwt(attackerKey, claims),
        unsignedJwt(published.kid, claims),
        hs256WithPublicKey(published, claims),
        `${h}.${b64url(claims)}.${s}`,
        signJwt(published, { ...claims, exp: now - 3600, iat: now - 7200, nbf: now - 7200 }),
        signJwt(published, { ...claims, aud: ["another-application"] }),
        signJwt(published, { ...claims, iss: "https://another-team.cloudflareaccess.com" }),
        signJwt(published, { ...claims, nbf: now + 3600 }),
        signJwt(attackerKey, claims, { kid: "a-kid-nobody-published" }),
      ]);
    }

    // --- the attempts ----------------------------------------------------------------------------------
    let attempts = 0;
    let leaks = 0;
    const tally = new Map();
    const failures = [];
    const check = (label, res, mustRefuse) => {
      attempts++;
      tally.set(label, (tally.get(label) ?? 0) + 1);
      const carried = [...secrets.keys()].filter((secret) => res.text.includes(secret));
      const leaked = carried.length > 0 || (mustRefuse && res.status >= 200 && res.status < 300);
      if (leaked) {
        leaks++;
        if (failures.length < 5) failures.push(`${label}: ${res.status} ${res.text.slice(0, 200)}`);
      }
    };

    const kinds = [
      // A valid credential of one's own, naming a victim: 403 (or 400 for a malformed spelling).
      async (mode, m) => {
        const attacker = pick(m.attackers);
        const victim = pick(m.victims);
        check(`${mode}: own credential, victim named`, await send(m.agent, victimRoutes(victim.userId, attacker.headers, pick)), true);
      },
      // A forged, expired, revoked or borrowed credential for the victim: 401, whatever the route.
      async (mode, m) => {
        const attacker = pick(m.attackers);
        const victim = pick(m.victims);
        const cred = mode === "userTokens" ? bearer(await forgedUserTokens(victim, attacker)) : accessHeader(forgedAccessJwts(victim, attacker));
        const spec = pick([victimRoutes(victim.userId, cred, pick), { method: "POST", path: "/api/chat", body: { message: "as the victim?" }, headers: cred }, { method: "GET", path: "/api/history", headers: cred }, { method: "POST", path: "/api/reset", body: {}, headers: cred }]);
        check(`${mode}: forged credential`, await send(m.agent, spec), true);
      },
      // Tricks that stay in one's own conversation: allowed to succeed, never to show a victim's data.
      async (mode, m) => {
        const attacker = pick(m.attackers);
        const victim = pick(m.victims);
        const spec = pick([
          { method: "POST", path: `/api/chat?userId=${encodeURIComponent(victim.userId)}`, body: { message: "query id" }, headers: attacker.headers },
          { method: "POST", path: "/api/chat", body: `{"userId":"${victim.userId}","message":"dup","userId":"${attacker.userId}"}`, headers: attacker.headers },
          { method: "POST", path: "/api/chat", body: { __proto__: { userId: victim.userId }, message: "proto" }, headers: attacker.headers },
          { method: "POST", path: "/api/chat", body: { message: "reuse the victim's key" }, headers: { ...attacker.headers, "Idempotency-Key": "seed-key" } },
          { method: "GET", path: "/api/history", headers: attacker.headers },
          { method: "GET", path: "/api/whoami", headers: attacker.headers },
          { method: "POST", path: "/api/reset", body: {}, headers: attacker.headers },
        ]);
        check(`${mode}: own conversation`, await send(m.agent, spec), false);
      },
      // Duplicated key spelling in JSON: the last one counts, and it names the victim.
      async (mode, m) => {
        const attacker = pick(m.attackers);
        const victim = pick(m.victims);
        const body = `{"userId":"${attacker.userId}","message":"dup","userId":"${victim.userId}"}`;
        check(`${mode}: duplicated userId`, await send(m.agent, { method: "POST", path: "/api/chat", body, headers: attacker.headers }), true);
      },
      // The admin route with anything but the admin token: a victim's revocation time is theirs too.
      async (mode, m) => {
        const attacker = pick(m.attackers);
        const victim = pick(m.victims);
        check(`${mode}: revoke without the admin token`, await send(m.agent, { method: "POST", path: "/api/admin/revoke", body: { userId: victim.userId }, headers: pick([attacker.headers, bearer(SIGNING_KEY), {}]) }), true);
      },
      // A credential of one mode presented to a Worker in another.
      async (mode, m) => {
        const other = mode === "userTokens" ? modes.access : modes.userTokens;
        const foreign = pick(other.attackers);
        const victim = pick(m.victims);
        check(`${mode}: credential of another mode`, await send(m.agent, victimRoutes(victim.userId, foreign.headers, pick)), true);
      },
    ];
    // The shared-token mode: none of the per-user credentials (nor the admin token) is its token.
    const tokenKind = async () => {
      const pool = [...modes.userTokens.attackers, ...modes.access.attackers, ...modes.userTokens.victims];
      const cred = pick([pick(pool).headers, bearer(ADMIN_TOKEN), bearer(SIGNING_KEY), {}]);
      check("token: not the shared token", await send(agents.token, victimRoutes(pick(["default-user", "vera", "mallory"]), cred, pick)), true);
    };

    const plan = [];
    for (let i = 0; i < ATTEMPTS; i++) {
      const r = random();
      if (r < 0.1) plan.push(tokenKind);
      else {
        const mode = r < 0.55 ? "userTokens" : "access";
        const kind = pick(kinds);
        plan.push(() => kind(mode, modes[mode]));
      }
    }
    // A few at a time, as concurrent clients would.
    for (let i = 0; i < plan.length; i += 12) await Promise.all(plan.slice(i, i + 12).map((f) => f()));

    // --- nothing of any victim changed, and each victim still reads their own ---------------------------
    const afterwards = await snapshot();
    let changed = 0;
    for (const [id, text] of before) if (afterwards.get(id) !== text) changed++;
    const lost = [...Object.values(modes)].flatMap((m) => m.victims).filter((v) => !afterwards.get(v.userId)?.includes(v.secret));

    const summary = `cross-user: ${attempts} attempts (seed ${SEED}) over ${tally.size} kinds, ${leaks} read or wrote another user's data, ${changed} victim conversations changed`;
    console.log(summary);
    t.diagnostic(summary);
    assert.deepEqual(lost.map((v) => v.userId), [], "victims who can no longer read their own secret");
    assert.deepEqual(failures, []);
    assert.equal(leaks, 0);
    assert.equal(changed, 0);
    assert.ok(attempts >= 1000, `${attempts} attempts`);
    assert.ok(tally.size >= 13, [...tally.keys()].join(", "));
  });
});
