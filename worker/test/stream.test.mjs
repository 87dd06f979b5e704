// Replies as server-sent events when the client asks (docs/protocol.md, `stream`), JSON otherwise.

import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { startAgent } from "../scripts/harness.mjs";
import { chat, chatStream, history, post } from "./helpers.mjs";

let agent;
before(async () => {
  // On a real loopback socket, so a client can hang up the way a person closing edgechat does.
  agent = await startAgent({ host: "127.0.0.1", port: 0 });
});
after(async () => {
  await agent?.dispose();
});

describe("streaming", () => {
  it("sends delta events that add up to the done event's message, then stores the turn", async () => {
    const res = await chatStream(agent, "streamer", "tell me a lot [[words 120]]");
    assert.equal(res.status, 200);
    assert.match(res.contentType, /^text\/event-stream/);
    assert.equal(res.headers.get("Cache-Control"), "no-cache");
    const deltas = res.events.filter((e) => e.event === "delta");
    assert.ok(deltas.length >= 20, `${deltas.length} deltas`);
    const done = res.events.at(-1);
    assert.equal(done.event, "done");
    assert.equal(res.events.filter((e) => e.event === "done").length, 1);
    assert.equal(deltas.map((e) => e.data.text).join(""), done.data.message);
    assert.equal(done.data.message.split(" ").length, 120);
    assert.equal(done.data.messageCount, 2);
    assert.equal(typeof done.data.usage.prompt_tokens, "number");
    assert.equal(done.data.usage.completion_tokens, 120);
    // Stored by the time `done` was sent.
    const stored = await history(agent, "streamer");
    assert.equal(stored.body.messages.at(-1).content, done.data.message);
    assert.equal(stored.body.messages.at(-1).stopped, false);
  });

  it("remembers streamed turns in later JSON turns and the other way round", async () => {
    await chat(agent, "switcher", "first, as JSON");
    const streamed = await chatStream(agent, "switcher", "second, streamed");
    assert.match(streamed.events.at(-1).data.message, /I remember 1 earlier messages from you; the first was "first, as JSON"/);
    const json = await chat(agent, "switcher", "third, as JSON");
    assert.equal(json.body.messageCount, 6);
    assert.match(json.body.message, /I remember 2 earlier messages/);
  });

  it("answers JSON when the client does not ask for a stream", async () => {
    for (const accept of [undefined, "application/json", "*/*"]) {
      const res = await post(agent, "/api/chat", { userId: "json-only", message: "hi" }, accept ? { Accept: accept } : {});
      assert.equal(res.headers.get("Content-Type"), "application/json", String(accept));
      assert.equal(typeof (await res.json()).message, "string");
    }
  });

  it("when the client hangs up midway, stores what it saw marked stopped, and takes the next turn", async () => {
    const user = "leaver";
    const full = Array.from({ length: 400 }, (_, i) => `w${i}`).join(" ");
    const url = new URL("/api/chat", agent.url);
    const seen = await new Promise((resolve, reject) => {
      const req = httpRequest(url, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      });
      req.on("error", reject);
      req.on("response", (res) => {
        assert.equal(res.statusCode, 200);
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => {
          text += chunk;
          if ((text.match(/event: delta/g) ?? []).length >= 5) {
            req.destroy();
            resolve(text);
          }
        });
        res.on("error", () => undefined);
      });
      req.end(JSON.stringify({ userId: user, message: "a long one [[words 400]] [[slow 15]]" }));
    });
    assert.ok(!seen.includes("event: done"));

    // The object notices the hang-up, stops reading the model and stores the turn: wait for it.
    let stored;
    for (let i = 0; i < 100; i++) {
      stored = await history(agent, user);
      if (stored.body.messageCount > 0) break;
      await sleep(50);
    }
    assert.equal(stored.body.messageCount, 2);
    const reply = stored.body.messages[1];
    assert.equal(reply.stopped, true);
    assert.ok(full.startsWith(reply.content), reply.content.slice(0, 80));
    assert.ok(reply.content.length < full.length, `${reply.content.length} of ${full.length} characters`);
    const next = await chat(agent, user, "are you still there?");
    assert.equal(next.body.messageCount, 4);
  });
});
