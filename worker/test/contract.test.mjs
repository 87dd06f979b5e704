// The seed's contract, answered exactly (docs/protocol.md "The seed contract"), plus the extension
// details a client relies on: capabilities, stable error codes, user id rules, CORS.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startAgent } from "../scripts/harness.mjs";
import { USER_ID_CASES, chat, history, post } from "./helpers.mjs";

let agent;
before(async () => {
  agent = await startAgent();
});
after(async () => {
  await agent?.dispose();
});

describe("health", () => {
  it("answers the seed's keys and the capabilities", async () => {
    const res = await agent.fetch("/");
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("Content-Type"), "application/json");
    const body = await res.json();
    assert.equal(body.status, "ok");
    assert.equal(typeof body.service, "string");
    assert.ok(!Number.isNaN(Date.parse(body.timestamp)), body.timestamp);
    assert.equal(body.protocol, 2);
    assert.deepEqual(body.capabilities, ["stream", "history", "reset", "whoami", "idempotency", "history-pages"]);
    // Protocol 1 readers take `auth` as a boolean; protocol 2 names the mode in `authMode`.
    assert.equal(body.auth, false);
    assert.equal(body.authMode, "none");
    assert.equal(body.limits, undefined);
    assert.equal(body.model, "@cf/meta/llama-3.3-70b-instruct-fp8-fast");
  });
});

describe("CORS", () => {
  it("answers a preflight with 204 and the seed's headers, naming the origin", async () => {
    const res = await agent.fetch("/api/chat", {
      method: "OPTIONS",
      headers: { Origin: "https://chat.example", "Access-Control-Request-Method": "POST" },
    });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get("Access-Control-Allow-Origin"), "https://chat.example");
    assert.equal(res.headers.get("Access-Control-Allow-Methods"), "GET, POST, OPTIONS");
    assert.match(res.headers.get("Access-Control-Allow-Headers"), /Content-Type/);
    assert.match(res.headers.get("Access-Control-Allow-Headers"), /Authorization/);
    assert.equal(res.headers.get("Access-Control-Max-Age"), "86400");
  });

  it("puts the CORS headers on every answer, errors included", async () => {
    for (const res of [await agent.fetch("/"), await agent.fetch("/nowhere"), await post(agent, "/api/chat", "{")]) {
      assert.equal(res.headers.get("Access-Control-Allow-Origin"), "*");
      await res.arrayBuffer();
    }
  });
});

describe("chat", () => {
  it("answers {message, messageCount} and counts 2 per turn, without the system prompt", async () => {
    const first = await chat(agent, "contract-count", "hello");
    assert.equal(first.status, 200);
    assert.equal(first.headers.get("Content-Type"), "application/json");
    assert.equal(typeof first.body.message, "string");
    assert.equal(first.body.messageCount, 2);
    const second = await chat(agent, "contract-count", "again");
    assert.equal(second.body.messageCount, 4);
  });

  it("treats a missing or empty userId as default-user, as the seed does", async () => {
    const missing = await post(agent, "/api/chat", { message: "no id" });
    assert.equal(missing.status, 200);
    const n = (await missing.json()).messageCount;
    const empty = await post(agent, "/api/chat", { message: "empty id", userId: "" });
    assert.equal((await empty.json()).messageCount, n + 2);
    const stored = await history(agent, "default-user");
    assert.equal(stored.body.messageCount, n + 2);
    assert.equal(stored.body.messages.at(-2).content, "empty id");
  });

  it("accepts a URL built with a doubled slash", async () => {
    const doubled = `${agent.url.href.replace(/\/$/, "")}//api/chat`;
    assert.match(doubled, /[^:]\/\/api\/chat$/);
    const res = await post(agent, doubled, { userId: "slashes", message: "hi" });
    assert.equal(res.status, 200);
    assert.equal((await res.json()).messageCount, 2);
  });

  it("refuses malformed requests with 400 bad_request and stores nothing", async () => {
    const cases = [
      "{not json",
      "[1, 2]",
      JSON.stringify({ userId: "malformed" }),
      JSON.stringify({ userId: "malformed", message: "" }),
      JSON.stringify({ userId: "malformed", message: 42 }),
      JSON.stringify({ userId: 7, message: "hi" }),
    ];
    for (const body of cases) {
      const res = await post(agent, "/api/chat", body);
      assert.equal(res.status, 400, body);
      const answer = await res.json();
      assert.equal(answer.code, "bad_request", body);
      assert.equal(typeof answer.error, "string");
    }
    assert.equal((await history(agent, "malformed")).body.messageCount, 0);
  });

  it("answers unknown routes and methods with 404 not_found", async () => {
    for (const [method, path] of [["GET", "/api/chat"], ["POST", "/"], ["GET", "/api/nothing"], ["DELETE", "/api/history"]]) {
      const res = await agent.fetch(path, { method });
      assert.equal(res.status, 404, `${method} ${path}`);
      assert.equal((await res.json()).code, "not_found");
    }
  });
});

describe("user ids", () => {
  // The cases shared with the Python client (src/edgechat_tui/core/data/userid_cases.json). An empty
  // id is not among them here: on the wire it means the seed's default-user (tested above).
  const valid = USER_ID_CASES.cases.filter((c) => c.valid).map((c) => c.id);
  const invalid = USER_ID_CASES.cases.filter((c) => !c.valid && c.id !== "").map((c) => c.id);
  /** A query string can carry any id but one with a lone surrogate, which has no UTF-8 form. */
  const inQuery = (id) => !/[\ud800-\udfff]/u.test(id);

  it("accepts every id the Python client accepts", async () => {
    for (const id of valid) {
      const res = await chat(agent, id, "hi");
      assert.equal(res.status, 200, id);
    }
  });

  it("refuses every id the Python client refuses with 400 bad_request, on every route", async () => {
    for (const id of invalid) {
      const res = await chat(agent, id, "hi");
      assert.equal(res.status, 400, JSON.stringify(id));
      assert.equal(res.body.code, "bad_request");
      if (inQuery(id)) {
        const h = await history(agent, id);
        assert.equal(h.status, 400, JSON.stringify(id));
      }
      const r = await post(agent, "/api/reset", { userId: id });
      assert.equal(r.status, 400, JSON.stringify(id));
      await r.arrayBuffer();
    }
  });
});

describe("under a path prefix (BASE_PATH)", () => {
  it("serves the protocol below the prefix and nothing outside it", async () => {
    const prefixed = await startAgent({ vars: { BASE_PATH: "/team" } });
    try {
      const health = await prefixed.fetch("/team/");
      assert.equal(health.status, 200);
      assert.equal((await health.json()).status, "ok");
      const turn = await chat({ fetch: (path, init) => prefixed.fetch(`/team${path}`, init) }, "prefixed", "hi");
      assert.equal(turn.body.messageCount, 2);
      for (const path of ["/", "/api/chat", "/teamwork/api/chat"]) {
        const res = await prefixed.fetch(path, { method: path === "/" ? "GET" : "POST", body: path === "/" ? undefined : "{}" });
        assert.equal(res.status, 404, path);
        await res.arrayBuffer();
      }
    } finally {
      await prefixed.dispose();
    }
  });
});
