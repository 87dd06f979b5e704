// The optional bearer token: when EDGECHAT_TOKEN is set, every route but the health check needs it.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startAgent } from "../scripts/harness.mjs";
import { post } from "./helpers.mjs";

const TOKEN = "s3cret-token-for-tests";
let agent;
before(async () => {
  agent = await startAgent({ token: TOKEN });
});
after(async () => {
  await agent?.dispose();
});

const routes = [
  ["POST", "/api/chat", { userId: "guarded", message: "hi" }],
  ["GET", "/api/history?userId=guarded"],
  ["POST", "/api/reset", { userId: "guarded" }],
  ["GET", "/api/unknown"],
];

function send(method, path, body, headers = {}) {
  if (method === "POST") return post(agent, path, body, headers);
  return agent.fetch(path, { method, headers });
}

describe("with a token configured", () => {
  it("leaves the health check open and says auth is on", async () => {
    const res = await agent.fetch("/");
    assert.equal(res.status, 200);
    assert.equal((await res.json()).auth, true);
  });

  it("answers preflights without a token, as browsers send none", async () => {
    const res = await agent.fetch("/api/chat", { method: "OPTIONS", headers: { Origin: "https://x.example" } });
    assert.equal(res.status, 204);
  });

  it("refuses every other route with 401 unauthorized without the right token", async () => {
    const wrong = [
      {},
      { Authorization: "" },
      { Authorization: "Bearer" },
      { Authorization: "Bearer " },
      { Authorization: "Bearer wrong" },
      { Authorization: `Bearer ${TOKEN}x` },
      { Authorization: `Bearer ${TOKEN.slice(0, -1)}` },
      { Authorization: `Basic ${TOKEN}` },
      { Authorization: TOKEN },
    ];
    for (const [method, path, body] of routes) {
      for (const headers of wrong) {
        const res = await send(method, path, body, headers);
        assert.equal(res.status, 401, `${method} ${path} ${JSON.stringify(headers)}`);
        assert.match(res.headers.get("WWW-Authenticate"), /^Bearer/);
        const answer = await res.json();
        assert.equal(answer.code, "unauthorized");
        assert.ok(!JSON.stringify(answer).includes(TOKEN), "the token never appears in an answer");
      }
    }
  });

  it("serves every route with the token, and stores nothing for refused requests", async () => {
    const auth = { Authorization: `Bearer ${TOKEN}` };
    const h0 = await send("GET", "/api/history?userId=guarded", undefined, auth);
    assert.equal(h0.status, 200);
    assert.equal((await h0.json()).messageCount, 0);
    const chat = await send("POST", "/api/chat", { userId: "guarded", message: "hi" }, { authorization: `bearer ${TOKEN}` });
    assert.equal(chat.status, 200);
    assert.equal((await chat.json()).messageCount, 2);
    const reset = await send("POST", "/api/reset", { userId: "guarded" }, auth);
    assert.equal(reset.status, 200);
    await reset.arrayBuffer();
    const missing = await send("GET", "/api/unknown", undefined, auth);
    assert.equal(missing.status, 404);
    await missing.arrayBuffer();
  });
});
