// Workers AI failures become statuses and codes a client can act on (docs/protocol.md), never a bare 500.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startAgent } from "../scripts/harness.mjs";
import { chat, chatStream } from "./helpers.mjs";

let agent;
before(async () => {
  agent = await startAgent();
});
after(async () => {
  await agent?.dispose();
});

describe("model errors", () => {
  const table = [
    [3040, 429, "rate_limited"],
    [3036, 429, "quota_exceeded"],
    [4006, 429, "quota_exceeded"],
    [3007, 502, "model_unavailable"],
    [5007, 502, "model_unavailable"],
    [10000, 502, "model_unavailable"],
  ];
  for (const [aiCode, status, code] of table) {
    it(`maps ${aiCode} to ${status} ${code}`, async () => {
      const res = await chat(agent, "errors", `x [[error ${aiCode}]]`);
      assert.equal(res.status, status);
      assert.equal(res.body.code, code);
      assert.equal(typeof res.body.error, "string");
      assert.ok(res.body.details.startsWith(`${aiCode}: `), res.body.details);
      if (code === "rate_limited") {
        assert.equal(res.body.retryAfter, 5);
        assert.equal(res.headers.get("Retry-After"), "5");
      } else {
        assert.equal(res.headers.get("Retry-After"), null);
      }
    });
  }

  it("maps an unknown model to 502 model_unavailable", async () => {
    const other = await startAgent({ vars: { MODEL: "@cf/nobody/no-such-model" } });
    try {
      const res = await chat(other, "errors", "hello");
      assert.equal(res.status, 502);
      assert.equal(res.body.code, "model_unavailable");
      assert.match(res.body.details, /^5007: /);
      const health = await other.fetch("/");
      assert.equal((await health.json()).model, "@cf/nobody/no-such-model");
    } finally {
      await other.dispose();
    }
  });

  it("fails a turn whose model never answers within MODEL_TIMEOUT_SECONDS, and stores nothing", async () => {
    const other = await startAgent({ vars: { MODEL_TIMEOUT_SECONDS: "0.3" } });
    try {
      const json = await chat(other, "waiter", "slow [[delay 3000]]");
      assert.equal(json.status, 502);
      assert.equal(json.body.code, "model_unavailable");
      const stream = await chatStream(other, "waiter", "slow stream [[words 50]] [[slow 1000]]");
      assert.equal(stream.status, 200);
      assert.equal(stream.events.at(-1).event, "error");
      assert.equal(stream.events.at(-1).data.code, "model_unavailable");
      const ok = await chat(other, "waiter", "quick");
      assert.equal(ok.body.messageCount, 2);
    } finally {
      await other.dispose();
    }
  });
});
