// Cloudflare Access mode: the Worker verifies `Cf-Access-Jwt-Assertion` itself against the team's keys,
// here served by a loopback stand-in team domain with two keys (current and previous), then rotated.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { startAgent } from "../scripts/harness.mjs";
import { userIdForEmail, userIdForService } from "../dist/units.js";
import { post } from "./helpers.mjs";
import {
  AUD,
  accessClaims,
  accessHeader,
  accessKey,
  b64url,
  hs256WithPublicKey,
  signJwt,
  startTeamDomain,
  unsignedJwt,
  userToken,
  bearer,
} from "./identity-helpers.mjs";

const current = accessKey("key-current");
const previous = accessKey("key-previous");
const next = accessKey("key-next");
const stranger = accessKey("key-current"); // same kid as a real key, another private key

let team;
let agent;
before(async () => {
  team = await startTeamDomain([current, previous]);
  agent = await startAgent({
    vars: { ACCESS_TEAM_DOMAIN: team.origin, ACCESS_AUD: AUD, ACCESS_CERTS_MIN_REFETCH_SECONDS: "1" },
  });
});
after(async () => {
  await agent?.dispose();
  await team?.close();
});

async function whoami(jwt) {
  const res = await agent.fetch("/api/whoami", { headers: jwt === undefined ? {} : accessHeader(jwt) });
  return { status: res.status, body: await res.json() };
}

describe("Cloudflare Access", () => {
  it("accepts tokens signed with either published key and maps the email to a user id", async () => {
    for (const key of [current, previous]) {
      const who = await whoami(signJwt(key, accessClaims(team, "Alice@Example.com")));
      assert.equal(who.status, 200, JSON.stringify(who.body));
      assert.equal(who.body.auth, "access");
      assert.equal(who.body.userId, await userIdForEmail("alice@example.com"));
      assert.match(who.body.userId, /^alice_example\.com-[0-9a-f]{12}$/);
      assert.ok(Date.parse(who.body.expiresAt) > Date.now());
    }
  });

  it("scopes chat, history and reset to the verified user, and refuses naming another with 403", async () => {
    const jwt = signJwt(current, accessClaims(team, "carol@example.com"));
    const me = await userIdForEmail("carol@example.com");
    const turn = await post(agent, "/api/chat", { message: "hello from carol" }, accessHeader(jwt));
    assert.equal(turn.status, 200);
    assert.equal((await turn.json()).messageCount, 2);
    const mine = await (await agent.fetch(`/api/history?userId=${me}`, { headers: accessHeader(jwt) })).json();
    assert.equal(mine.userId, me);
    assert.equal(mine.messages[0].content, "hello from carol");
    for (const res of [
      await post(agent, "/api/chat", { userId: "carol", message: "x" }, accessHeader(jwt)),
      await agent.fetch("/api/history?userId=default-user", { headers: accessHeader(jwt) }),
      await post(agent, "/api/reset", { userId: await userIdForEmail("dave@example.com") }, accessHeader(jwt)),
    ]) {
      assert.equal(res.status, 403);
      assert.equal((await res.json()).code, "forbidden");
    }
    const reset = await post(agent, "/api/reset", {}, accessHeader(jwt));
    assert.equal((await reset.json()).ok, true);
  });

  it("refuses a second identity whose email maps onto an id another identity holds (no silent collision)", async () => {
    // A real collision needs 48 bits of SHA-256 to agree; bind the object to another principal instead.
    const id = await userIdForEmail("collide@example.com");
    const ns = await agent.mf.getDurableObjectNamespace("CONVERSATIONS");
    const bound = await ns.get(ns.idFromName(id)).authorize({ principal: "email:someone-else@example.com" });
    assert.equal(await bound.ok, true);
    for (const email of ["collide@example.com", "Collide@Example.COM"]) {
      const jwt = signJwt(current, accessClaims(team, email));
      const who = await whoami(jwt);
      assert.equal(who.status, 403);
      assert.equal(who.body.code, "forbidden");
      const turn = await post(agent, "/api/chat", { message: "mine?" }, accessHeader(jwt));
      assert.equal(turn.status, 403);
      await turn.arrayBuffer();
    }
    // The first identity to use an id keeps it; case and spacing do not make another identity.
    for (const email of ["keeper@example.com", " KEEPER@example.com"]) {
      assert.equal((await whoami(signJwt(current, accessClaims(team, email)))).status, 200, email);
    }
  });

  it("names a service token by its client id", async () => {
    const claims = accessClaims(team, undefined, { common_name: "0123abcd.access", sub: "" });
    delete claims.email;
    const who = await whoami(signJwt(current, claims));
    assert.equal(who.status, 200);
    assert.equal(who.body.userId, await userIdForService("0123abcd.access"));
    assert.match(who.body.userId, /^service-0123abcd\.access-[0-9a-f]{12}$/);
  });

  it("refuses forged, expired, early, foreign and malformed tokens with 401", async () => {
    const now = Math.floor(Date.now() / 1000);
    const ok = accessClaims(team, "eve@example.com");
    const noEmail = { ...ok };
    delete noEmail.email;
    const noExp = { ...ok };
    delete noExp.exp;
    const good = signJwt(current, ok);
    const [h, p, s] = good.split(".");
    const cases = {
      "forged: another private key under a published kid": signJwt(stranger, ok),
      "tampered claims": `${h}.${b64url({ ...ok, email: "admin@example.com" })}.${s}`,
      "tampered signature": `${h}.${p}.${s.slice(0, 10)}${s[10] === "A" ? "B" : "A"}${s.slice(11)}`,
      "no signature": `${h}.${p}.`,
      expired: signJwt(current, { ...ok, exp: now - 120, iat: now - 3600, nbf: now - 3600 }),
      "not yet valid (nbf)": signJwt(current, { ...ok, nbf: now + 600 }),
      "issued in the future": signJwt(current, { ...ok, iat: now + 600, nbf: undefined }),
      "wrong audience": signJwt(current, { ...ok, aud: ["someone-elses-aud"] }),
      "wrong audience (string)": signJwt(current, { ...ok, aud: "someone-elses-aud" }),
      "no audience": signJwt(current, { ...ok, aud: undefined }),
      "wrong issuer": signJwt(current, { ...ok, iss: "https://evil.cloudflareaccess.com" }),
      "issuer with a trailing slash": signJwt(current, { ...ok, iss: `${team.origin}/` }),
      "no expiry": signJwt(current, noExp),
      "unknown kid": signJwt(next, ok),
      "no kid": signJwt(current, ok, { kid: undefined }),
      "alg none": unsignedJwt(current.kid, ok),
      "alg none with a signature": `${b64url({ alg: "none", kid: current.kid })}.${p}.${s}`,
      "HS256 signed with the public key": hs256WithPublicKey(current, ok),
      "RS512 header": signJwt(current, ok, { alg: "RS512" }),
      "no email": signJwt(current, noEmail),
      "critical header": signJwt(current, ok, { crit: ["exp"] }),
      "two parts": `${h}.${p}`,
      garbage: "not-a-jwt",
      "a per-user token": await userToken("eve"),
    };
    for (const [what, jwt] of Object.entries(cases)) {
      const who = await whoami(jwt);
      assert.equal(who.status, 401, `${what}: ${JSON.stringify(who.body)}`);
      assert.equal(who.body.code, "unauthorized", what);
      const turn = await post(agent, "/api/chat", { message: "x" }, accessHeader(jwt));
      assert.equal(turn.status, 401, what);
      await turn.arrayBuffer();
    }
    // The header, not a bearer token, carries the identity.
    assert.equal((await agent.fetch("/api/whoami", { headers: bearer(good) })).status, 401);
    assert.equal((await whoami(undefined)).status, 401);
    assert.equal((await whoami(good)).status, 200);
  });

  it("refetches the keys on an unknown kid at most once per floor, however many arrive", async () => {
    await sleep(1100); // past the 1 s floor of this agent
    const before = team.fetches;
    const started = Date.now();
    const claims = accessClaims(team, "flood@example.com");
    // A valid signature under a made-up kid each time: only the kid is unknown.
    const flood = Array.from({ length: 60 }, (_, i) => whoami(signJwt(current, claims, { kid: `made-up-${i}` })));
    for (const who of await Promise.all(flood)) assert.equal(who.status, 401);
    // And one after another, as a patient attacker would send them.
    for (let i = 0; i < 40; i++) assert.equal((await whoami(signJwt(current, claims, { kid: `one-by-one-${i}` }))).status, 401);
    const allowed = 1 + Math.floor((Date.now() - started) / 1000);
    assert.ok(team.fetches - before <= allowed, `${team.fetches - before} fetches for 100 unknown kids; at most ${allowed}`);
    // Known kids never fetch.
    const known = team.fetches;
    for (let i = 0; i < 10; i++) assert.equal((await whoami(signJwt(current, claims))).status, 200);
    assert.equal(team.fetches, known);
  });

  it("follows a key rotation: a new kid is fetched, a withdrawn key stops working", async () => {
    team.keys = [next, current];
    await sleep(1100);
    const claims = accessClaims(team, "rotation@example.com");
    assert.equal((await whoami(signJwt(next, claims))).status, 200);
    assert.equal((await whoami(signJwt(current, claims))).status, 200);
    const withdrawn = await whoami(signJwt(previous, claims));
    assert.equal(withdrawn.status, 401);
  });

  it("answers 503 unavailable when the team's keys cannot be fetched and none are cached", async () => {
    const down = await startTeamDomain([current]);
    down.up = false;
    const lonely = await startAgent({ vars: { ACCESS_TEAM_DOMAIN: down.origin, ACCESS_AUD: AUD } });
    try {
      const res = await lonely.fetch("/api/whoami", { headers: accessHeader(signJwt(current, accessClaims(down, "x@example.com"))) });
      assert.equal(res.status, 503);
      const body = await res.json();
      assert.equal(body.code, "unavailable");
      assert.equal(res.headers.get("Retry-After"), "5");
    } finally {
      await lonely.dispose();
      await down.close();
    }
  });
});
