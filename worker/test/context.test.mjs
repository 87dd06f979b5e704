// The context sent to the model: the system prompt and the newest turns that fit the window with
// max_tokens counted; a message that cannot fit is refused before the model is paid for it.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startAgent } from "../scripts/harness.mjs";
import { SHARED_MODELS, chat, chatStream, history } from "./helpers.mjs";

let agent;
const requests = [];
before(async () => {
  agent = await startAgent({ record: (r) => requests.push(r) });
});
after(async () => {
  await agent?.dispose();
});

function bytesOf(messages) {
  return messages.reduce((n, m) => n + Buffer.byteLength(m.content), 0);
}

describe("the model request", () => {
  it("names the model, an explicit max_tokens and the temperature, with the system prompt first", async () => {
    requests.length = 0;
    await chat(agent, "params", "hi");
    const [sent] = requests;
    // As deployed (wrangler.jsonc), the defaults shared with the Python client (models.json).
    const { defaults } = SHARED_MODELS;
    assert.equal(sent.model, defaults.model);
    assert.equal(sent.inputs.max_tokens, defaults.max_tokens);
    assert.equal(sent.inputs.temperature, defaults.temperature);
    assert.equal(sent.inputs.stream, false);
    assert.equal(sent.inputs.messages[0].role, "system");
    assert.equal(sent.inputs.messages[0].content, defaults.system_prompt);
    assert.deepEqual(sent.inputs.messages.at(-1), { role: "user", content: "hi" });
  });

  it("lets a long reply run past the model's default of 256 tokens", async () => {
    const res = await chat(agent, "long-reply", "an essay please [[words 1500]]");
    assert.equal(res.body.message.split(" ").length, 1500);
  });
});

describe("trimming to the window", () => {
  it("keeps the system prompt and the newest whole exchanges once the history outgrows the window", async () => {
    const user = "trimmed";
    const chunk = "0123456789abcdef".repeat(1000); // 16,000 bytes a message
    for (let i = 0; i < 8; i++) await chat(agent, user, `q${i} ${chunk}`);
    requests.length = 0;
    const res = await chat(agent, user, "q-last");
    assert.equal(res.status, 200);
    assert.equal(res.body.messageCount, 18);
    const sent = requests[0].inputs.messages;
    assert.equal(sent[0].role, "system");
    assert.equal(sent[1].role, "user", "the context opens with a question, not an orphan reply");
    assert.equal(sent.at(-1).content, "q-last");
    const stored = (await history(agent, user)).body.messages;
    const context = sent.slice(1, -1);
    assert.deepEqual(context, stored.slice(-1 - 1 - context.length, -2).map(({ role, content }) => ({ role, content })));
    assert.ok(context.length >= 4 && context.length < 16, `${context.length} stored messages sent`);
    // Within the window with max_tokens counted, by the Worker's (cautious) estimate of 3 bytes a token.
    assert.ok(bytesOf(sent) / 3 + 2048 <= 24000, `${bytesOf(sent)} bytes`);
    // And the next older exchange would not have fitted.
    const older = stored.slice(-2 - context.length - 2, -2 - context.length);
    assert.ok((bytesOf(sent) + bytesOf(older)) / 3 + 2048 > 24000 - 64 - 8 * (sent.length + 2));
  });

  it("refuses a message that cannot fit on its own with 413, without calling the model or storing it", async () => {
    const user = "too-long";
    await chat(agent, user, "short first");
    requests.length = 0;
    const huge = "x".repeat(80_000);
    for (const send of [chat, chatStream]) {
      const res = await send(agent, user, huge);
      assert.equal(res.status, 413);
      assert.equal(res.body.code, "context_too_long");
    }
    assert.equal(requests.length, 0);
    assert.equal((await history(agent, user)).body.messageCount, 2);
  });

  it("retries once with less history when the model counts more tokens than the estimate", async () => {
    const user = "dense";
    const chunk = "z".repeat(12_000);
    for (let i = 0; i < 5; i++) await chat(agent, user, `d${i} ${chunk}`);
    requests.length = 0;
    // The stub now counts a token per two bytes: the first attempt, fitted by the Worker's estimate,
    // is too long for it (5021), and the second must fit.
    const res = await chat(agent, user, "count densely [[dense]]");
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(requests.length, 2);
    const [first, second] = requests.map((r) => r.inputs.messages);
    assert.ok(second.length < first.length, `${first.length} then ${second.length} messages`);
    assert.ok(bytesOf(first) / 2 + 2048 > 24000);
    assert.ok(bytesOf(second) / 2 + 2048 <= 24000);
    assert.equal(second[1].role, "user");
    assert.equal(res.body.messageCount, 12);
  });

  it("answers 413 and stores nothing when even the retry cannot fit", async () => {
    const user = "dense-alone";
    requests.length = 0;
    // 60,000 bytes fit the Worker's estimate (20,000 tokens) but not the stub's dense count (30,000).
    const res = await chat(agent, user, `${"y".repeat(60_000)} [[dense]]`);
    assert.equal(res.status, 413);
    assert.equal(res.body.code, "context_too_long");
    assert.equal(requests.length, 1);
    assert.equal((await history(agent, user)).body.messageCount, 0);
  });
});
