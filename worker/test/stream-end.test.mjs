// How a streamed turn ends when something goes wrong: a model stream that stops without `[DONE]` or
// carries data the Worker cannot read is a failed turn (an `error` event, nothing stored), as in the
// Python client's own reader; a client that leaves before any text reached it leaves nothing stored.

import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { startAgent } from "../scripts/harness.mjs";
import { chat, chatStream, history } from "./helpers.mjs";

let agent;
const requests = [];
let gate = null;
before(async () => {
  // On a real loopback socket, so a client can hang up the way a person closing edgechat does.
  agent = await startAgent({
    host: "127.0.0.1",
    port: 0,
    record: async (r) => {
      requests.push(r);
      if (gate) await gate(r);
    },
  });
});
after(async () => {
  await agent?.dispose();
});

describe("a model stream the Worker cannot take as a whole reply", () => {
  const cases = [
    ["ends without [DONE] after the whole text", "[[words 40]] [[no-done]]", "model_unavailable", /without \[DONE\] after \d+ characters/],
    ["ends cleanly after three events", "[[words 40]] [[cut 3]]", "model_unavailable", /without \[DONE\]/],
    ["ends before any text", "[[words 40]] [[cut 0]]", "model_unavailable", /without \[DONE\] and without any text/],
    ["carries data that is not JSON", "[[words 40]] [[garbage]]", "model_unavailable", /not JSON/],
    ["carries bytes that are not UTF-8", "[[words 40]] [[bad-utf8]]", "model_unavailable", /not UTF-8/],
    ["carries a piece whose response is not text", "[[words 40]] [[not-text]]", "model_unavailable", /not text/],
    ["reports capacity inside the stream", "[[words 40]] [[error-event 3040]]", "rate_limited", /^3040: /],
    ["reports the daily quota inside the stream", "[[words 40]] [[error-event 4006]]", "quota_exceeded", /^4006: /],
  ];
  for (const [what, directives, code, details] of cases) {
    it(`${what}: an error event (${code}), nothing stored`, async () => {
      const user = `broken-${directives.replace(/\W+/g, "-")}`.slice(0, 64);
      const res = await chatStream(agent, user, `reply please ${directives}`);
      assert.equal(res.status, 200);
      const last = res.events.at(-1);
      assert.equal(last.event, "error", JSON.stringify(res.events.slice(-2)));
      assert.equal(last.data.code, code);
      assert.equal(typeof last.data.error, "string");
      assert.match(last.data.details, details);
      assert.ok(!res.events.some((e) => e.event === "done"));
      assert.equal((await history(agent, user)).body.messageCount, 0);
      // The next turn starts from an empty conversation: the broken one left nothing behind.
      const next = await chat(agent, user, "again");
      assert.equal(next.body.messageCount, 2);
      assert.match(next.body.message, /This is the first message I have from you/);
    });
  }

  it("still takes a stream whose events carry an empty errors list and unknown keys", async () => {
    // The control: every case above differs from this whole reply by one fault.
    const res = await chatStream(agent, "whole-control", "reply please [[words 40]] [[empty-errors]]");
    const done = res.events.at(-1);
    assert.equal(done.event, "done", JSON.stringify(done));
    assert.equal(done.data.message.split(" ").length, 40);
    assert.equal(done.data.messageCount, 2);
    assert.equal((await history(agent, "whole-control")).body.messages[1].stopped, false);
  });
});

/**
 * Starts a streamed turn on a raw HTTP request and hangs up: at the answer's headers (`when:
 * "headers"`), or as soon as the model has been called (`when: "model"`, before any answer). Resolves
 * with what the client had received.
 */
function hangUp(user, message, when) {
  return new Promise((resolve, reject) => {
    const req = httpRequest(new URL("/api/chat", agent.url), {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
    });
    req.on("error", () => undefined);
    if (when === "model") {
      gate = async (r) => {
        if (r.inputs.messages.at(-1).content !== message) return;
        gate = null;
        req.destroy();
        resolve("");
        // Hold the model's answer a little, so the Worker sees the hang-up while it waits for it.
        await sleep(100);
      };
    }
    req.on("response", (res) => {
      assert.equal(res.statusCode, 200);
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (text += chunk));
      res.on("error", () => undefined);
      if (when === "headers") {
        req.destroy();
        resolve(text);
      }
    });
    req.end(JSON.stringify({ userId: user, message }), (err) => (err ? reject(err) : undefined));
  });
}

describe("a client that leaves before any text reached it", () => {
  it("leaves nothing stored when it hangs up at the answer's headers", async () => {
    const user = "early-leaver";
    await chat(agent, user, "before");
    // The first piece comes a second after the model starts answering: the client is gone by then.
    const seen = await hangUp(user, "never mind [[words 5]] [[slow 1000]]", "headers");
    assert.ok(!seen.includes("event: delta"), seen);
    // The next turn waits for the stopped one: its count says whether that one stored anything.
    const next = await chat(agent, user, "after");
    assert.equal(next.status, 200);
    assert.equal(next.body.messageCount, 4);
    const stored = await history(agent, user);
    assert.deepEqual(stored.body.messages.filter((m) => m.role === "user").map((m) => m.content), ["before", "after"]);
    assert.ok(stored.body.messages.every((m) => m.stopped !== true));
  });

  it("leaves nothing stored when it hangs up while the model has not answered yet", async () => {
    const user = "impatient";
    await hangUp(user, "quick, or I go [[words 5]] [[slow 1000]]", "model");
    const next = await chat(agent, user, "after");
    assert.equal(next.body.messageCount, 2);
    assert.match(next.body.message, /This is the first message I have from you/);
  });

  it("keeps a reply it saw part of, marked stopped", async () => {
    const user = "partial-leaver";
    const seen = await new Promise((resolve, reject) => {
      const req = httpRequest(new URL("/api/chat", agent.url), {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      });
      req.on("error", reject);
      req.on("response", (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => {
          text += chunk;
          if (text.includes("event: delta")) {
            req.destroy();
            resolve(text);
          }
        });
        res.on("error", () => undefined);
      });
      req.end(JSON.stringify({ userId: user, message: "go on [[words 200]] [[slow 20]]" }));
    });
    assert.ok(seen.includes("event: delta"));
    const next = await chat(agent, user, "after");
    assert.equal(next.body.messageCount, 4);
    const reply = (await history(agent, user)).body.messages[1];
    assert.equal(reply.stopped, true);
    assert.ok(reply.content.length > 0);
  });
});

describe("a turn with an Idempotency-Key whose client left before any text", () => {
  it("leaves nothing under the key: sending it again runs the turn, once", async () => {
    const user = "keyed-leaver";
    const message = "keyed, then gone [[words 5]] [[slow 1000]]";
    const key = "9b7c1f1e-keyed-leaver";
    await new Promise((resolve) => {
      const req = httpRequest(new URL("/api/chat", agent.url), {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream", "Idempotency-Key": key },
      });
      req.on("error", () => undefined);
      req.on("response", () => {
        req.destroy();
        resolve();
      });
      req.end(JSON.stringify({ userId: user, message }));
    });
    // The same message with the same key, as a client sends it again. While the first attempt is
    // still being stopped, the resend is told it was not processed (429): the client sends it again.
    let again;
    for (let i = 0; i < 50; i++) {
      again = await chat(agent, user, message, { "Idempotency-Key": key });
      if (again.status !== 429) break;
      assert.equal(again.body.code, "rate_limited");
      await sleep(50);
    }
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal(again.body.replayed, undefined, "a new turn, not a replay of the stopped one");
    assert.equal(again.body.messageCount, 2);
    assert.match(again.body.message, /^w0 w1 w2 w3 w4$/);
    const stored = await history(agent, user);
    assert.deepEqual(stored.body.messages.map((m) => [m.role, m.stopped ?? null]), [["user", null], ["assistant", false]]);
  });
});
