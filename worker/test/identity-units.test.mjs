// The identity modules' pure parts, in Node: the email → user id mapping, strict base64url, the team
// domain rules, and reading the identity configuration.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  base64urlDecode,
  base64urlEncode,
  isLoopbackHost,
  mintToken,
  parseTeamDomain,
  readServiceConfig,
  userIdForEmail,
  userIdForService,
  userIdProblem,
  verifyToken,
} from "../dist/units.js";

function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe("userIdForEmail", () => {
  it("is deterministic, ignores case and surrounding space, and documents its shape", async () => {
    const id = await userIdForEmail("alice@example.com");
    assert.match(id, /^alice_example\.com-[0-9a-f]{12}$/);
    assert.equal(await userIdForEmail("  ALICE@Example.COM "), id);
    assert.notEqual(await userIdForEmail("alice@example.org"), id);
  });

  it("always gives a valid user id, and distinct emails distinct ids, over 3,000 awkward emails", async () => {
    const next = rng(99);
    const alphabet = ["a", "Z", "0", ".", "..", "_", "-", "+", "@", "é", "😀", " ", "/", "\\", "con", "nul.", "\u0000", "ß", "İ"];
    const seen = new Map();
    const fixed = [
      "con@x", "con.x@y", "nul.txt@z", ".hidden@x", "..@..", "a..b@c", "@", "x".repeat(300) + "@y",
      "x".repeat(300) + "@z", "a+b@x.com", "a_b@x.com", "a-b@x.com", "lpt1.a@b", "com9@x", "-@-", "😀@😀",
    ];
    const emails = [...fixed];
    while (emails.length < 3000) {
      const n = 1 + Math.floor(next() * 30);
      let e = "";
      for (let i = 0; i < n; i++) e += alphabet[Math.floor(next() * alphabet.length)];
      emails.push(e);
    }
    for (const email of emails) {
      const id = await userIdForEmail(email);
      assert.equal(userIdProblem(id), null, `${JSON.stringify(email)} -> ${id}`);
      const normalized = email.trim().normalize("NFC").toLowerCase();
      const other = seen.get(id);
      assert.ok(other === undefined || other === normalized, `${JSON.stringify(email)} and ${JSON.stringify(other)} collide`);
      seen.set(id, normalized);
    }
  });

  it("keeps service tokens apart from emails", async () => {
    const service = await userIdForService("0123.access");
    assert.match(service, /^service-0123\.access-[0-9a-f]{12}$/);
    assert.notEqual(service, await userIdForEmail("service-0123.access"));
    assert.equal(userIdProblem(service), null);
  });
});

describe("base64url", () => {
  it("round-trips and refuses padding, other alphabets and non-canonical spellings", () => {
    const next = rng(5);
    for (let n = 0; n < 200; n++) {
      const bytes = Uint8Array.from({ length: Math.floor(next() * 40) }, () => Math.floor(next() * 256));
      const text = base64urlEncode(bytes);
      assert.equal(text, Buffer.from(bytes).toString("base64url"));
      assert.deepEqual(base64urlDecode(text), bytes);
    }
    for (const bad of ["ab==", "a+b/", "a", "ab c", "QR"]) assert.equal(base64urlDecode(bad), null, bad);
    assert.deepEqual(base64urlDecode("QQ"), Uint8Array.of(65));
  });
});

describe("per-user tokens", () => {
  const key = "k".repeat(40);
  it("verify what they mint, and nothing under another key or after expiry", async () => {
    const token = await mintToken(key, { sub: "alice", iat: 1000, exp: 5000 });
    assert.deepEqual(await verifyToken(key, token, 2000), { ok: true, claims: { sub: "alice", iat: 1000, exp: 5000 } });
    assert.equal((await verifyToken(`${key}x`, token, 2000)).ok, false);
    assert.equal((await verifyToken(key, token, 5000)).ok, false);
    assert.equal((await verifyToken(`  ${key}\n`, token, 2000)).ok, true, "the secret is trimmed on both sides");
    await assert.rejects(mintToken("short", { sub: "alice", iat: 1, exp: 2 }));
    await assert.rejects(mintToken(key, { sub: "../x", iat: 1, exp: 2 }));
  });
});

describe("team domains", () => {
  it("take https, or plain http on loopback only", () => {
    assert.deepEqual(parseTeamDomain("https://team.cloudflareaccess.com/"), { origin: "https://team.cloudflareaccess.com" });
    assert.deepEqual(parseTeamDomain("team.cloudflareaccess.com"), { origin: "https://team.cloudflareaccess.com" });
    assert.deepEqual(parseTeamDomain("http://127.0.0.1:8788"), { origin: "http://127.0.0.1:8788" });
    assert.deepEqual(parseTeamDomain("http://[::1]:8788"), { origin: "http://[::1]:8788" });
    for (const bad of ["http://team.cloudflareaccess.com", "http://127.0.0.1.evil.com", "ftp://x", "https://t.com/path", "https://u:p@t.com", " "]) {
      assert.ok("problem" in parseTeamDomain(bad), bad);
    }
    assert.equal(isLoopbackHost("localhost"), true);
    assert.equal(isLoopbackHost("10.0.0.1"), false);
  });
});

describe("readServiceConfig", () => {
  it("picks the mode from what is set, and lists every problem without a secret's value", () => {
    assert.equal(readServiceConfig({}).mode, "none");
    assert.equal(readServiceConfig({ EDGECHAT_TOKEN: " t " }).sharedToken, "t");
    assert.equal(readServiceConfig({ EDGECHAT_SIGNING_KEY: "s".repeat(32) }).mode, "user-tokens");
    const access = readServiceConfig({ ACCESS_TEAM_DOMAIN: "https://t.cloudflareaccess.com", ACCESS_AUD: " aud " });
    assert.equal(access.mode, "access");
    assert.deepEqual(access.access, { origin: "https://t.cloudflareaccess.com", audience: "aud", refetchFloorMs: 30_000 });
    const bad = readServiceConfig({ EDGECHAT_TOKEN: "   ", EDGECHAT_SIGNING_KEY: "tiny-secret", USER_DAILY_TOKENS: "-1" });
    assert.equal(bad.problems.length, 4, bad.problems.join("\n"));
    assert.ok(!bad.problems.join(" ").includes("tiny-secret"));
    assert.deepEqual(readServiceConfig({ USER_DAILY_TOKENS: "5000", USER_TURNS_PER_MINUTE: 10 }).limits, {
      dailyTokens: 5000,
      turnsPerMinute: 10,
      idempotencyKeys: 1000,
    });
  });
});
