// The Worker's pure parts, run in Node from the bundle scripts/build.mjs makes of them.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  ApiError,
  TurnQueue,
  budgetAfterRejection,
  estimateTokens,
  fitContext,
  inputBudget,
  mapModelError,
  readResult,
  readSettings,
  readStreamData,
  routePath,
  sseData,
  userIdProblem,
  utf8Length,
} from "../dist/units.js";

/** A small deterministic generator, so failures can be replayed. */
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe("utf8Length", () => {
  it("agrees with Node's encoder on mixed text, astral characters and lone surrogates", () => {
    const alphabet = ["a", "é", "€", "中", "😀", "\ud800", "\udc00", "\n", "\u0000", "𝄞"];
    const next = rng(7);
    for (let n = 0; n < 500; n++) {
      let text = "";
      const len = Math.floor(next() * 40);
      for (let i = 0; i < len; i++) text += alphabet[Math.floor(next() * alphabet.length)];
      assert.equal(utf8Length(text), Buffer.byteLength(text, "utf8"), JSON.stringify(text));
    }
  });
});

describe("fitContext", () => {
  const system = { role: "system", content: "sys" };
  const msg = (role, bytes, tag) => ({ role, content: `${tag}:`.padEnd(bytes, "x") });

  it("keeps the newest messages that fit and opens the context with a question", () => {
    const stored = [msg("user", 300, "u0"), msg("assistant", 300, "a0"), msg("user", 300, "u1"), msg("assistant", 300, "a1")];
    const incoming = msg("user", 30, "new");
    const each = estimateTokens(stored[0]);
    // Room for three stored messages: the oldest of those would be a reply, so it is dropped too.
    const budget = estimateTokens(system) + estimateTokens(incoming) + 3 * each;
    const fitted = fitContext(system, [...stored].reverse(), incoming, budget);
    assert.deepEqual(fitted.messages.map((m) => m.content.slice(0, 3)), ["sys", "u1:", "a1:", "new"]);
    assert.equal(fitted.historyUsed, 2);
    assert.ok(fitted.estimatedTokens <= budget);
  });

  it("returns null when the new message alone does not fit", () => {
    assert.equal(fitContext(system, [], msg("user", 3000, "big"), 500), null);
  });

  it("reads the history only as far as it needs", () => {
    let read = 0;
    function* newestFirst() {
      for (let i = 0; i < 1_000_000; i++) {
        read++;
        yield msg(i % 2 ? "user" : "assistant", 3000, String(i));
      }
    }
    const fitted = fitContext(system, newestFirst(), msg("user", 10, "n"), inputBudget(24000, 2048));
    assert.ok(read < 40, `${read} messages read`);
    assert.ok(fitted.historyUsed > 10);
  });
});

describe("budgetAfterRejection", () => {
  it("scales the budget by the model's own count", () => {
    const text = "5021: The estimated number of input and maximum output tokens (32048) exceeded this model context window limit (24000).";
    // The model counted 30,000 input tokens where the Worker estimated 20,000: 1.5 times as many.
    const budget = budgetAfterRejection(text, 20_000, 21_888, 2048, 24_000);
    assert.ok(budget < 21_888 / 1.5 && budget > 21_888 / 1.5 * 0.9, String(budget));
  });

  it("halves the budget when the error gives no count", () => {
    assert.equal(budgetAfterRejection("3006: Request is too large", 20_000, 21_888, 2048, 24_000), 10_944);
  });
});

describe("model answers", () => {
  it("reads response strings, numbers and OpenAI-style choices", () => {
    assert.deepEqual(readResult({ response: "hi", usage: { prompt_tokens: 3, x: 1 } }), { text: "hi", usage: { prompt_tokens: 3 } });
    assert.equal(readResult({ response: 42 }).text, "42");
    assert.equal(readResult({ choices: [{ message: { content: "yo" } }] }).text, "yo");
    assert.equal(readResult({ nothing: true }), null);
    assert.equal(readResult(null), null);
  });

  it("reads stream pieces of either shape and the end marker", () => {
    assert.deepEqual(readStreamData('{"response":"a","p":"pad"}'), { text: "a", usage: undefined });
    assert.equal(readStreamData('{"choices":[{"delta":{"content":"b"}}]}').text, "b");
    assert.deepEqual(readStreamData('{"response":"","usage":{"completion_tokens":2}}').usage, { completion_tokens: 2 });
    assert.equal(readStreamData("[DONE]"), null);
    assert.equal(readStreamData(" [DONE] "), null);
    assert.deepEqual(readStreamData('{"response":"c","errors":[],"error":null}'), { text: "c", usage: undefined });
    assert.equal(readStreamData('{"response":null,"choices":[{"delta":{}}]}').text, "");
  });

  it("refuses stream data it cannot read as a piece of the reply, as the Python client does", () => {
    const unreadable = ["not json", '{"response": "cut', "42", '"text"', "null", "[1]", '{"response":{"text":"x"}}', '{"response":true}'];
    for (const data of unreadable) {
      assert.throws(() => readStreamData(data), (err) => err.code === "model_unavailable", data);
    }
    assert.throws(() => readStreamData('{"errors":[{"code":3040,"message":"Capacity temporarily exceeded"}]}'), (err) => err.code === "rate_limited");
    assert.throws(() => readStreamData('{"error":"4006: daily free allocation used"}'), (err) => err.code === "quota_exceeded");
  });

  it("refuses a stream whose bytes are not UTF-8", async () => {
    const bytes = new Uint8Array([...Buffer.from('data: {"response":"caf'), 0xe9, ...Buffer.from('"}\n\n')]);
    const stream = new Response(bytes).body;
    await assert.rejects(async () => {
      for await (const data of sseData(stream, (r) => r.read())) void data;
    }, (err) => err.code === "model_unavailable" && /UTF-8/.test(err.details));
  });

  it("splits an event stream the same way however it is cut into chunks", async () => {
    const payloads = ['{"response":"héllo "}', '{"response":"wörld 😀"}', '{"response":"","usage":{"total_tokens":5}}', "[DONE]"];
    const wire = Buffer.from(`: comment\r\n\r\n${payloads.map((p, i) => `${i % 2 ? "data:" : "data: "}${p}${i % 2 ? "\r\n\r\n" : "\n\n"}`).join("")}`);
    const next = rng(11);
    for (let trial = 0; trial < 200; trial++) {
      const chunks = [];
      for (let at = 0; at < wire.length; ) {
        const size = 1 + Math.floor(next() * 9);
        chunks.push(new Uint8Array(wire.subarray(at, at + size)));
        at += size;
      }
      const stream = new ReadableStream({
        pull(controller) {
          const chunk = chunks.shift();
          if (chunk) controller.enqueue(chunk);
          else controller.close();
        },
      });
      const got = [];
      for await (const data of sseData(stream, (r) => r.read())) got.push(data);
      assert.deepEqual(got, payloads);
    }
  });
});

describe("mapModelError", () => {
  const cases = [
    ["3040: Capacity temporarily exceeded, please try again.", "rate_limited", 429],
    ["AiError: 3040: Capacity temporarily exceeded", "rate_limited", 429],
    ["3036: daily free allocation", "quota_exceeded", 429],
    ["4006: you have used up your daily free allocation of 10,000 neurons", "quota_exceeded", 429],
    ["5021: The estimated number of input and maximum output tokens (30000) exceeded this model context window limit (24000).", "context_too_long", 413],
    ["3010: Requested token count exceeds the model's maximum context length of 8192 tokens", "context_too_long", 413],
    ["Requested token count exceeds the model's maximum context length of 8192 tokens", "context_too_long", 413],
    ["5007: No such model @cf/x or task", "model_unavailable", 502],
    ["3007: Request timeout", "model_unavailable", 502],
    ["internal error; reference = abc", "model_unavailable", 502],
  ];
  for (const [text, code, status] of cases) {
    it(`maps "${text.slice(0, 40)}" to ${code}`, () => {
      const mapped = mapModelError(new Error(text));
      assert.equal(mapped.code, code);
      assert.equal(mapped.status, status);
      assert.equal(mapped.details, text);
    });
  }

  it("passes an ApiError through", () => {
    const err = new ApiError("bad_request", "no");
    assert.equal(mapModelError(err), err);
  });
});

describe("settings", () => {
  // The defaults themselves come from models.json: test/shared-data.test.mjs holds them to it.
  it("lets vars override the model, its window and the rest", () => {
    assert.equal(readSettings({ MODEL: "@cf/meta/llama-3.1-8b-instruct-fast" }).contextWindow, 128000);
    assert.equal(readSettings({ MODEL: "@cf/some/new-model", CONTEXT_WINDOW: "64000" }).contextWindow, 64000);
    assert.equal(readSettings({ MODEL: "  " }).model, readSettings({}).model);
    assert.equal(readSettings({ TEMPERATURE: "0.2" }).temperature, 0.2);
    assert.equal(readSettings({ SYSTEM_PROMPT: "Be brief." }).systemPrompt, "Be brief.");
  });

  it("keeps max_tokens to at most half the window and ignores nonsense", () => {
    assert.equal(readSettings({ MAX_TOKENS: 900000 }).maxTokens, 12000);
    assert.equal(readSettings({ MAX_TOKENS: "512" }).maxTokens, 512);
    assert.equal(readSettings({ MAX_TOKENS: "lots" }).maxTokens, readSettings({}).maxTokens);
    assert.equal(readSettings({ TEMPERATURE: "9" }).temperature, readSettings({}).temperature);
  });
});

describe("TurnQueue", () => {
  it("runs turns one after another in arrival order and refuses past its limit", async () => {
    const queue = new TurnQueue();
    const log = [];
    const turn = async (name, steps) => {
      const release = await queue.acquire(3);
      try {
        for (let i = 0; i < steps; i++) {
          log.push(`${name}${i}`);
          await new Promise((r) => setImmediate(r));
        }
      } finally {
        release();
        release(); // a second call does nothing
      }
    };
    const running = [turn("a", 3), turn("b", 2), turn("c", 1)];
    await assert.rejects(queue.acquire(3), (err) => err.code === "rate_limited");
    await Promise.all(running);
    assert.deepEqual(log, ["a0", "a1", "a2", "b0", "b1", "c0"]);
    assert.equal(queue.depth, 0);
  });
});

describe("userIdProblem", () => {
  // The shared cases (userid_cases.json) are run in test/shared-data.test.mjs; these are the texts.
  it("says which rule an id breaks, counting characters as code points", () => {
    assert.equal(userIdProblem("alice"), null);
    assert.equal(userIdProblem(""), "it is empty");
    assert.equal(userIdProblem("x".repeat(65)), "it is 65 characters long");
    assert.equal(userIdProblem("😀".repeat(70)), "it is 70 characters long");
    assert.equal(userIdProblem(".a"), "it starts with a dot");
    assert.equal(userIdProblem("a..b"), "it contains '..'");
    assert.equal(userIdProblem("Com1.txt"), "it is a device name on Windows");
    assert.match(userIdProblem("a b"), /character outside/);
  });
});

describe("routePath", () => {
  it("collapses slashes, drops a trailing one and takes off BASE_PATH", () => {
    assert.equal(routePath("//api/chat", undefined), "/api/chat");
    assert.equal(routePath("/api/history/", ""), "/api/history");
    assert.equal(routePath("/", undefined), "/");
    assert.equal(routePath("/team/api/chat", "/team"), "/api/chat");
    assert.equal(routePath("/team", "team/"), "/");
    assert.equal(routePath("/team/", "/team"), "/");
    assert.equal(routePath("/teamwork/api/chat", "/team"), null);
    assert.equal(routePath("/api/chat", "/team"), null);
  });
});
