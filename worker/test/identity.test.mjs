// Identity modes (docs/protocol.md "Identity"): configuration that fails closed, what the health check
// announces, whoami, per-user tokens (tampered, expired, another user's, revoked) and the mint-token script.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { startAgent } from "../scripts/harness.mjs";
import { WORKER_DIR } from "../scripts/build.mjs";
import { chat, history, post } from "./helpers.mjs";
import { ADMIN_TOKEN, SIGNING_KEY, b64url, bearer, userToken } from "./identity-helpers.mjs";

const run = promisify(execFile);

describe("configuration fails closed", () => {
  const secret = "a-real-secret-value-that-must-never-be-echoed-0123456789";
  const cases = [
    ["a whitespace-only EDGECHAT_TOKEN", { EDGECHAT_TOKEN: " \t " }, /EDGECHAT_TOKEN is set but empty/],
    ["an empty EDGECHAT_TOKEN", { EDGECHAT_TOKEN: "" }, /EDGECHAT_TOKEN is set but empty/],
    ["a whitespace-only EDGECHAT_SIGNING_KEY", { EDGECHAT_SIGNING_KEY: "   " }, /EDGECHAT_SIGNING_KEY is set but empty/],
    ["a short EDGECHAT_SIGNING_KEY", { EDGECHAT_SIGNING_KEY: "short-key" }, /shorter than 32/],
    ["a whitespace-only EDGECHAT_ADMIN_TOKEN", { EDGECHAT_SIGNING_KEY: secret, EDGECHAT_ADMIN_TOKEN: "\n" }, /EDGECHAT_ADMIN_TOKEN is set but empty/],
    ["two modes at once", { EDGECHAT_TOKEN: secret, EDGECHAT_SIGNING_KEY: secret }, /more than one identity mode/],
    ["ACCESS_AUD without ACCESS_TEAM_DOMAIN", { ACCESS_AUD: "aud" }, /ACCESS_TEAM_DOMAIN is not/],
    ["ACCESS_TEAM_DOMAIN without ACCESS_AUD", { ACCESS_TEAM_DOMAIN: "https://t.cloudflareaccess.com" }, /ACCESS_AUD is not/],
    ["a whitespace-only ACCESS_AUD", { ACCESS_TEAM_DOMAIN: "https://t.cloudflareaccess.com", ACCESS_AUD: " " }, /ACCESS_AUD is set but empty/],
    ["a plain-http team domain that is not loopback", { ACCESS_TEAM_DOMAIN: "http://t.cloudflareaccess.com", ACCESS_AUD: "a" }, /https/],
    ["a team domain with a path", { ACCESS_TEAM_DOMAIN: "https://t.cloudflareaccess.com/x", ACCESS_AUD: "a" }, /origin/],
    ["a limit that is not a number", { USER_DAILY_TOKENS: "lots" }, /USER_DAILY_TOKENS must be a whole number/],
    ["a blank limit", { USER_TURNS_PER_MINUTE: " " }, /USER_TURNS_PER_MINUTE must be a whole number/],
  ];
  let agents;
  before(async () => {
    agents = await Promise.all(cases.map(([, vars]) => startAgent({ vars })));
  });
  after(async () => {
    await Promise.all((agents ?? []).map((a) => a.dispose()));
  });

  it("refuses every route, the health check included, with 500 misconfigured naming the variable", async () => {
    for (const [i, [what, , reason]] of cases.entries()) {
      const agent = agents[i];
      const answers = [
        await agent.fetch("/"),
        await post(agent, "/api/chat", { message: "hi" }, bearer(secret)),
        await agent.fetch("/api/history", { headers: bearer(secret) }),
        await agent.fetch("/api/whoami", { headers: bearer(secret) }),
        await post(agent, "/api/reset", {}, bearer(secret)),
        await post(agent, "/api/admin/revoke", { userId: "x" }, bearer(secret)),
      ];
      for (const res of answers) {
        assert.equal(res.status, 500, what);
        const text = await res.text();
        const body = JSON.parse(text);
        assert.equal(body.code, "misconfigured", what);
        assert.match(body.details, reason, what);
        assert.ok(!text.includes(secret) && !text.includes("short-key"), `${what}: a secret's value in the answer`);
      }
      // Nothing was stored: the turn never reached an object.
    }
  });
});

describe("the health check announces the mode", () => {
  const modes = [
    [{}, false, "none"],
    [{ EDGECHAT_TOKEN: "tok" }, true, "token"],
    [{ EDGECHAT_SIGNING_KEY: SIGNING_KEY }, true, "user-tokens"],
    [{ ACCESS_TEAM_DOMAIN: "https://team.cloudflareaccess.com", ACCESS_AUD: "aud" }, true, "access"],
  ];
  for (const [vars, auth, mode] of modes) {
    it(`${mode}: auth ${auth}, authMode ${mode}, protocol 2, whoami and idempotency offered`, async () => {
      const agent = await startAgent({ vars });
      try {
        const body = await (await agent.fetch("/")).json();
        assert.equal(body.protocol, 2);
        assert.equal(body.auth, auth);
        assert.equal(body.authMode, mode);
        assert.ok(body.capabilities.includes("whoami") && body.capabilities.includes("idempotency"));
        const who = await agent.fetch("/api/whoami");
        assert.equal(who.status, mode === "none" ? 200 : 401);
        const answer = await who.json();
        if (mode === "none") assert.deepEqual(answer, { userId: null, auth: "none" });
        else assert.equal(answer.code, "unauthorized");
      } finally {
        await agent.dispose();
      }
    });
  }
});

describe("shared token mode", () => {
  it("keeps today's contract: the client names the user, whoami says the mode", async () => {
    const agent = await startAgent({ token: "shared-token-for-tests" });
    try {
      const auth = bearer("shared-token-for-tests");
      assert.equal((await chat(agent, "anyone", "hi", auth)).body.messageCount, 2);
      const who = await (await agent.fetch("/api/whoami", { headers: auth })).json();
      assert.deepEqual(who, { userId: null, auth: "token" });
      // A per-user token is not the shared token.
      const res = await chat(agent, "anyone", "hi", bearer(await userToken("anyone")));
      assert.equal(res.status, 401);
    } finally {
      await agent.dispose();
    }
  });
});

describe("per-user tokens", () => {
  let agent;
  before(async () => {
    agent = await startAgent({ vars: { EDGECHAT_SIGNING_KEY: SIGNING_KEY, EDGECHAT_ADMIN_TOKEN: ADMIN_TOKEN } });
  });
  after(async () => {
    await agent?.dispose();
  });

  it("takes the user from the token: no userId means the token's user; whoami says who", async () => {
    const token = await userToken("alice");
    const first = await post(agent, "/api/chat", { message: "I am alice" }, bearer(token));
    assert.equal(first.status, 200);
    assert.equal((await first.json()).messageCount, 2);
    const named = await chat(agent, "alice", "still alice", bearer(token));
    assert.equal(named.body.messageCount, 4);
    const stored = await agent.fetch("/api/history", { headers: bearer(token) });
    const body = await stored.json();
    assert.equal(body.userId, "alice");
    assert.deepEqual(body.messages.filter((m) => m.role === "user").map((m) => m.content), ["I am alice", "still alice"]);
    const who = await (await agent.fetch("/api/whoami", { headers: bearer(token) })).json();
    assert.equal(who.userId, "alice");
    assert.equal(who.auth, "user-tokens");
    assert.ok(Date.parse(who.expiresAt) > Date.now() + 80 * 86_400_000);
  });

  it("answers 403 forbidden when a request names another user, on every route, and stores nothing", async () => {
    const token = await userToken("mallory");
    const auth = bearer(token);
    await chat(agent, "victim", "placeholder", bearer(await userToken("victim")));
    const attempts = [
      await post(agent, "/api/chat", { userId: "victim", message: "let me in" }, auth),
      await agent.fetch("/api/history?userId=victim", { headers: auth }),
      await post(agent, "/api/reset", { userId: "victim" }, auth),
      await agent.fetch("/api/whoami?userId=victim", { headers: auth }),
      await post(agent, "/api/chat", { userId: "Mallory", message: "case" }, auth),
    ];
    for (const res of attempts) {
      assert.equal(res.status, 403);
      assert.equal((await res.json()).code, "forbidden");
    }
    const victim = await history(agent, "victim", "", bearer(await userToken("victim")));
    assert.equal(victim.body.messageCount, 2);
    assert.equal((await history(agent, "mallory", "", auth)).body.messageCount, 0);
  });

  it("refuses tampered, forged, expired, not-yet-valid and malformed tokens with 401", async () => {
    const good = await userToken("tamper");
    const [, payload, mac] = good.split(".");
    const claims = JSON.parse(Buffer.from(payload, "base64url"));
    const swapped = `ec1.${b64url({ ...claims, sub: "victim" })}.${mac}`;
    const extended = `ec1.${b64url({ ...claims, exp: claims.exp + 1e12 })}.${mac}`;
    const flipped = `ec1.${payload}.${mac.slice(0, -2)}${mac.at(-2) === "A" ? "B" : "A"}${mac.at(-1)}`;
    const bad = [
      swapped,
      extended,
      flipped,
      `ec1.${payload}.`,
      `ec1.${payload}`,
      `ec1.${payload}.${mac}.extra`,
      `ec2.${payload}.${mac}`,
      await userToken("tamper", { key: "another-signing-key-of-sufficient-length!!" }),
      await userToken("tamper", { iat: Date.now() - 10_000, exp: Date.now() - 1 }),
      await userToken("tamper", { iat: Date.now() + 3_600_000, exp: Date.now() + 7_200_000 }),
      `ec1.${b64url({ v: 1, sub: "tamper", iat: 1, exp: 9e15 })}.${mac}`,
      `ec1.${b64url("not json")}.${mac}`,
      "ec1.!!!.???",
      "x".repeat(5000),
      SIGNING_KEY,
      ADMIN_TOKEN,
    ];
    for (const token of bad) {
      for (const res of [
        await post(agent, "/api/chat", { message: "hi" }, bearer(token)),
        await agent.fetch("/api/history", { headers: bearer(token) }),
        await agent.fetch("/api/whoami", { headers: bearer(token) }),
      ]) {
        assert.equal(res.status, 401, token.slice(0, 60));
        const text = await res.text();
        assert.equal(JSON.parse(text).code, "unauthorized");
        assert.ok(!text.includes(token.slice(4, 40)) && !text.includes(SIGNING_KEY), "no credential in the answer");
      }
    }
    assert.equal((await history(agent, "victim", "", bearer(await userToken("victim")))).body.messageCount, 2);
  });

  it("revokes: the admin route makes a user's earlier tokens invalid, later ones and other users' stay good", async () => {
    const old = await userToken("bob");
    const alice = await userToken("alice");
    assert.equal((await chat(agent, "bob", "before", bearer(old))).status, 200);

    for (const auth of [{}, bearer(old), bearer(SIGNING_KEY), bearer(`${ADMIN_TOKEN}x`)]) {
      const refused = await post(agent, "/api/admin/revoke", { userId: "bob" }, auth);
      assert.equal(refused.status, 401);
      assert.equal((await refused.json()).code, "unauthorized");
    }
    assert.equal((await chat(agent, "bob", "still fine", bearer(old))).status, 200);
    const badBody = await post(agent, "/api/admin/revoke", { userId: "../bob" }, bearer(ADMIN_TOKEN));
    assert.equal(badBody.status, 400);
    await badBody.arrayBuffer();

    const revoked = await post(agent, "/api/admin/revoke", { userId: "bob" }, bearer(ADMIN_TOKEN));
    assert.equal(revoked.status, 200);
    const answer = await revoked.json();
    assert.equal(answer.ok, true);
    assert.equal(answer.userId, "bob");
    assert.ok(!Number.isNaN(Date.parse(answer.notBefore)));

    for (const res of [
      await chat(agent, "bob", "after", bearer(old)),
      await history(agent, "bob", "", bearer(old)),
    ]) {
      assert.equal(res.status, 401);
      assert.match(res.body.error, /revoked/);
    }
    const fresh = await userToken("bob", { iat: Math.max(Date.now(), Date.parse(answer.notBefore)) + 1 });
    const next = await chat(agent, "bob", "with a new token", bearer(fresh));
    assert.equal(next.status, 200);
    assert.equal(next.body.messageCount, 6);
    assert.equal((await chat(agent, "alice", "unaffected", bearer(alice))).status, 200);
  });

  it("has no revocation route in other modes", async () => {
    const plain = await startAgent({ token: "shared" });
    try {
      const res = await post(plain, "/api/admin/revoke", { userId: "bob" }, bearer("shared"));
      assert.equal(res.status, 404);
      await res.arrayBuffer();
    } finally {
      await plain.dispose();
    }
  });

  it("accepts what `npm run mint-token -- --user carol --days 90` prints, alone on its last line", async () => {
    const { stdout, stderr } = await run("npm", ["run", "mint-token", "--", "--user", "carol", "--days", "90"], {
      cwd: WORKER_DIR,
      env: { ...process.env, EDGECHAT_SIGNING_KEY: SIGNING_KEY },
    });
    const lines = stdout.trimEnd().split("\n");
    const token = lines.at(-1);
    assert.match(token, /^ec1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    assert.ok(!stdout.includes(SIGNING_KEY) && !stderr.includes(SIGNING_KEY));
    const who = await (await agent.fetch("/api/whoami", { headers: bearer(token) })).json();
    assert.equal(who.userId, "carol");
    const days = (Date.parse(who.expiresAt) - Date.now()) / 86_400_000;
    assert.ok(days > 89.9 && days <= 90, String(days));

    // Without the secret, or with a bad user id, it refuses and prints no token.
    const env = { ...process.env };
    delete env.EDGECHAT_SIGNING_KEY;
    for (const [args, environment] of [
      [["--user", "carol"], env],
      [["--user", "a/b"], { ...env, EDGECHAT_SIGNING_KEY: SIGNING_KEY }],
      [["--user", "carol"], { ...env, EDGECHAT_SIGNING_KEY: "   " }],
    ]) {
      await assert.rejects(run("node", ["scripts/mint-token.mjs", ...args], { cwd: WORKER_DIR, env: environment }), (err) => {
        assert.equal(err.code, 2);
        assert.ok(!/ec1\./.test(err.stdout));
        return true;
      });
    }
  });
});
