// Per-user limits (docs/protocol.md "quota_exceeded"): tokens per UTC day, counted from the model's
// reported usage, and turns per minute, each counted in the user's own object.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startAgent } from "../scripts/harness.mjs";
import { chat, chatStream, history } from "./helpers.mjs";

function assertQuota(answer, limit, maxSeconds) {
  assert.equal(answer.status, 429, JSON.stringify(answer.body));
  assert.equal(answer.body.code, "quota_exceeded");
  assert.equal(answer.body.limit, limit);
  const retryAfter = Number(answer.headers.get("Retry-After"));
  assert.equal(answer.body.retryAfter, retryAfter);
  assert.ok(retryAfter >= 1 && retryAfter <= maxSeconds, String(retryAfter));
  const resetIn = (Date.parse(answer.body.resetAt) - Date.now()) / 1000;
  assert.ok(resetIn > -2 && resetIn <= maxSeconds + 1, `${answer.body.resetAt} is ${resetIn} s away`);
}

describe("turns per minute", () => {
  let agent;
  before(async () => {
    agent = await startAgent({ vars: { USER_TURNS_PER_MINUTE: "3" } });
  });
  after(async () => {
    await agent?.dispose();
  });

  it("refuses a user's turn past the limit with 429 quota_exceeded and when it resets; other users are untouched", async () => {
    const health = await (await agent.fetch("/")).json();
    assert.deepEqual(health.limits, { userDailyTokens: null, userTurnsPerMinute: 3 });
    const keyed = await chat(agent, "hasty", "one", { "Idempotency-Key": "first" });
    assert.equal(keyed.status, 200);
    assert.equal((await chat(agent, "hasty", "two")).status, 200);
    assert.equal((await chat(agent, "hasty", "three")).status, 200);
    assertQuota(await chat(agent, "hasty", "four"), "turns_per_minute", 60);
    const streamed = await chatStream(agent, "hasty", "five");
    assertQuota({ status: streamed.status, body: streamed.body, headers: streamed.headers }, "turns_per_minute", 60);
    // A retry of a turn already made is not a new turn: it still answers.
    const replay = await chat(agent, "hasty", "one", { "Idempotency-Key": "first" });
    assert.equal(replay.status, 200);
    assert.equal(replay.body.replayed, true);
    assert.equal((await history(agent, "hasty")).body.messageCount, 6);

    for (const text of ["a", "b", "c"]) assert.equal((await chat(agent, "patient", text)).status, 200);
    assertQuota(await chat(agent, "patient", "d"), "turns_per_minute", 60);
  });
});

describe("tokens per day", () => {
  const LIMIT = 400;
  let agent;
  before(async () => {
    agent = await startAgent({ vars: { USER_DAILY_TOKENS: String(LIMIT) } });
  });
  after(async () => {
    await agent?.dispose();
  });

  it("counts the model's reported usage, JSON and streamed, and refuses once the day's tokens are used", async () => {
    let used = 0;
    let turns = 0;
    for (;;) {
      const streamed = turns % 2 === 1;
      const answer = streamed
        ? await chatStream(agent, "thrifty", `turn ${turns} [[words 60]]`)
        : await chat(agent, "thrifty", `turn ${turns} [[words 60]]`);
      if (used >= LIMIT) {
        const res = streamed ? { status: answer.status, body: answer.body, headers: answer.headers } : answer;
        assertQuota(res, "daily_tokens", 86_400);
        const midnight = new Date();
        midnight.setUTCHours(24, 0, 0, 0);
        assert.equal(res.body.resetAt, midnight.toISOString());
        break;
      }
      const body = streamed ? answer.events.at(-1).data : answer.body;
      assert.equal(answer.status, 200, `turn ${turns} after ${used} tokens: ${JSON.stringify(body)}`);
      used += body.usage.total_tokens;
      turns++;
      assert.ok(turns < 50, "the limit never took effect");
    }
    assert.ok(turns >= 3, `${turns} turns`);
    assert.equal((await history(agent, "thrifty")).body.messageCount, 2 * turns);
    // Another user's day is their own.
    const other = await chat(agent, "generous", "hello [[words 60]]");
    assert.equal(other.status, 200);
  });
});
