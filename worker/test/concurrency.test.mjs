// Turns for one user run one after another: concurrent requests lose nothing and `messageCount`
// stays consistent (the seed interleaved them across the model call and lost exchanges).

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startAgent } from "../scripts/harness.mjs";
import { chat, chatStream, history } from "./helpers.mjs";

let agent;
const requests = [];
let gate = null;
before(async () => {
  agent = await startAgent({
    record: async (r) => {
      requests.push(r);
      if (gate) await gate(r);
    },
  });
});
after(async () => {
  await agent?.dispose();
});

/** Deterministic spread of small delays, so the model calls of concurrent turns overlap in time. */
function delayFor(i) {
  return (i * 37) % 29;
}

function assertPairs(messages) {
  for (let i = 0; i < messages.length; i += 2) {
    assert.equal(messages[i].role, "user", `message ${i}`);
    assert.equal(messages[i + 1].role, "assistant", `message ${i + 1}`);
    // The stub quotes the message it answered: each reply sits right after its own question.
    const asked = messages[i].content.replace(/ \[\[.*$/, "");
    assert.ok(messages[i + 1].content.startsWith(`You said "${messages[i].content}"`), `${asked} -> ${messages[i + 1].content}`);
  }
}

describe("many concurrent turns for one user", () => {
  it("stores every exchange once, in pairs, with distinct counts 2..2N", async () => {
    const user = "crowd";
    const n = 48;
    requests.length = 0;
    const answers = await Promise.all(
      Array.from({ length: n }, (_, i) => chat(agent, user, `message ${i} [[delay ${delayFor(i)}]]`)),
    );
    for (const a of answers) assert.equal(a.status, 200, JSON.stringify(a.body));
    const counts = answers.map((a) => a.body.messageCount).sort((a, b) => a - b);
    assert.deepEqual(counts, Array.from({ length: n }, (_, i) => 2 * (i + 1)));

    const stored = await history(agent, user);
    assert.equal(stored.body.messageCount, 2 * n);
    assert.equal(stored.body.messages.length, 2 * n);
    assertPairs(stored.body.messages);
    const asked = stored.body.messages.filter((m) => m.role === "user").map((m) => m.content);
    assert.equal(new Set(asked).size, n);

    // Each model call saw every earlier exchange: system prompt + 2k stored messages + the new one.
    const sizes = requests.map((r) => r.inputs.messages.length);
    assert.deepEqual(sizes, Array.from({ length: n }, (_, k) => 2 * k + 2));
  });

  it("keeps the count right when streamed, JSON and failing turns are mixed", async () => {
    const user = "mixed-crowd";
    const n = 36;
    requests.length = 0;
    const sends = Array.from({ length: n }, (_, i) => {
      const text = `mixed ${i} [[delay ${delayFor(i)}]]`;
      if (i % 3 === 0) return chat(agent, user, `${text} [[error 3040]]`).then((a) => ({ kind: "fail", a }));
      if (i % 3 === 1) return chatStream(agent, user, `${text} [[words 30]]`).then((a) => ({ kind: "stream", a }));
      return chat(agent, user, text).then((a) => ({ kind: "json", a }));
    });
    const results = await Promise.all(sends);
    const counts = [];
    for (const { kind, a } of results) {
      if (kind === "fail") {
        assert.equal(a.status, 429);
        assert.equal(a.body.code, "rate_limited");
        assert.equal(a.headers.get("Retry-After"), "5");
      } else if (kind === "stream") {
        assert.equal(a.status, 200);
        const done = a.events.at(-1);
        assert.equal(done.event, "done");
        counts.push(done.data.messageCount);
      } else {
        assert.equal(a.status, 200);
        counts.push(a.body.messageCount);
      }
    }
    const successes = results.filter((r) => r.kind !== "fail").length;
    counts.sort((a, b) => a - b);
    assert.deepEqual(counts, Array.from({ length: successes }, (_, i) => 2 * (i + 1)));
    const stored = await history(agent, user);
    assert.equal(stored.body.messageCount, 2 * successes);
    assert.ok(stored.body.messages.every((m) => !m.content.includes("[[error")));
    // One at a time: each model call saw exactly the exchanges stored before it.
    let before = 0;
    for (const r of requests) {
      assert.equal(r.inputs.messages.length, 2 * before + 2);
      if (!r.inputs.messages.at(-1).content.includes("[[error")) before++;
    }
    assert.equal(before, successes);
  });

  it("does not hold one user's turn behind another user's", async () => {
    // Hold the model call of `slow-user` until `quick-user`'s turn has finished: if the two shared
    // a queue, this would never finish.
    let releaseSlow;
    const slowHeld = new Promise((resolve) => {
      releaseSlow = resolve;
    });
    let slowArrived;
    const slowSeen = new Promise((resolve) => {
      slowArrived = resolve;
    });
    gate = async (r) => {
      if (r.inputs.messages.at(-1).content === "slow one") {
        slowArrived();
        await slowHeld;
      }
    };
    try {
      const slow = chat(agent, "slow-user", "slow one");
      await slowSeen;
      const quick = await chat(agent, "quick-user", "quick one");
      assert.equal(quick.body.messageCount, 2);
      releaseSlow();
      assert.equal((await slow).body.messageCount, 2);
    } finally {
      gate = null;
      releaseSlow();
    }
  });

  it("makes a history read wait for no turn, and a reset wait for the turn in progress", async () => {
    const user = "reader-during-turn";
    await chat(agent, user, "first");
    let release;
    const held = new Promise((resolve) => {
      release = resolve;
    });
    let arrived;
    const seen = new Promise((resolve) => {
      arrived = resolve;
    });
    gate = async (r) => {
      if (r.inputs.messages.at(-1).content === "second") {
        arrived();
        await held;
      }
    };
    try {
      const turn = chat(agent, user, "second");
      await seen;
      // The model is still answering "second": history answers now, with what is stored.
      assert.equal((await history(agent, user)).body.messageCount, 2);
      const resetting = agent.fetch("/api/reset", { method: "POST", body: JSON.stringify({ userId: user }) });
      release();
      const turnAnswer = await turn;
      assert.equal(turnAnswer.body.messageCount, 4);
      const resetAnswer = await (await resetting).json();
      // The reset came after the turn, so it archived both exchanges rather than splitting one.
      assert.equal(typeof resetAnswer.archived, "string");
      assert.equal((await history(agent, user)).body.messageCount, 0);
    } finally {
      gate = null;
      release();
    }
  });
});

describe("a flood for one user", () => {
  it("is refused with 429 rate_limited past MAX_QUEUED_TURNS, and the rest is stored", async () => {
    // The first model call is held until the refusals are in, so exactly MAX_QUEUED_TURNS turns
    // (the running one and three waiting) are admitted, whatever the timing.
    let release;
    const held = new Promise((resolve) => {
      release = resolve;
    });
    let calls = 0;
    const small = await startAgent({
      vars: { MAX_QUEUED_TURNS: "4" },
      record: async () => {
        if (calls++ === 0) await held;
      },
    });
    try {
      const user = "flooder";
      const total = 12;
      let refusedSoFar = 0;
      const answers = Array.from({ length: total }, (_, i) =>
        chat(small, user, `flood ${i}`).then((a) => {
          if (a.status === 429 && ++refusedSoFar === total - 4) release();
          return a;
        }),
      );
      const settled = await Promise.all(answers);
      const ok = settled.filter((a) => a.status === 200);
      const refused = settled.filter((a) => a.status === 429);
      assert.equal(ok.length, 4);
      assert.equal(refused.length, total - 4);
      for (const r of refused) {
        assert.equal(r.body.code, "rate_limited");
        assert.equal(r.headers.get("Retry-After"), "1");
      }
      assert.deepEqual(ok.map((a) => a.body.messageCount).sort((a, b) => a - b), [2, 4, 6, 8]);
      assert.equal((await history(small, user)).body.messageCount, 8);
    } finally {
      release();
      await small.dispose();
    }
  });
});
