// Migration of a user's Durable Object from schema 1 (one open conversation and the archives of
// `reset`) to schema 2 (the conversation library): the Worker as it was before the library runs first,
// on storage persisted to disk, then today's Worker opens the same storage. Nothing may be lost.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { build } from "esbuild";
import { DIST, WORKER_DIR } from "../scripts/build.mjs";
import { startAgent } from "../scripts/harness.mjs";
import { api, chat, history, reset } from "./helpers.mjs";

/** The last commit with schema 1 (the branch point of the conversation library). */
const SCHEMA_1_COMMIT = "2ebf104";
const REPO = join(WORKER_DIR, "..");

let work;
let oldBundle = null;
before(async () => {
  work = mkdtempSync(join(tmpdir(), "edgechat-migrate-"));
  try {
    execFileSync("git", ["cat-file", "-e", `${SCHEMA_1_COMMIT}^{commit}`], { cwd: REPO, stdio: "ignore" });
  } catch {
    return; // a shallow clone without the old commit: the test says so and skips
  }
  const src = join(work, "src");
  mkdirSync(src);
  const archive = execFileSync("git", ["archive", SCHEMA_1_COMMIT, "worker/src", "src/edgechat_tui/core/data"], { cwd: REPO, maxBuffer: 64 << 20 });
  execFileSync("tar", ["-x", "-C", src], { input: archive });
  // workerd loads modules from below its working directory only: the bundle goes into dist/.
  mkdirSync(join(DIST, "migration"), { recursive: true });
  oldBundle = join(DIST, "migration", "schema-1.js");
  await build({
    entryPoints: [join(src, "worker", "src", "index.ts")],
    outfile: oldBundle,
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    conditions: ["workerd", "worker", "browser"],
    external: ["cloudflare:*"],
    logLevel: "warning",
  });
});
after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

const strip = (messages) => messages.map(({ role, content }) => ({ role, content }));

describe("migration from one conversation to the library", () => {
  it("turns the open conversation and the archives of reset into conversations, nothing lost", async (t) => {
    if (oldBundle === null) {
      t.skip(`commit ${SCHEMA_1_COMMIT} is not in this clone`);
      return;
    }
    const persist = join(work, "state");
    const user = "long-time-user";
    const old = await startAgent({ persist, scriptPath: oldBundle });
    const before = {};
    try {
      for (const text of ["the first chat about Kyoto", "and its temples"]) await chat(old, user, text);
      before.first = strip((await history(old, user)).body.messages);
      await reset(old, user);
      for (const text of ["second chat: sourdough starter", "how often to feed it", "and the flour"]) await chat(old, user, text);
      before.second = strip((await history(old, user)).body.messages);
      await reset(old, user);
      // The open conversation, with a turn under an idempotency key.
      await chat(old, user, "the current one: chess openings", { "Idempotency-Key": "old-key" });
      before.current = strip((await history(old, user)).body.messages);
      // Another user, and an empty conversation left open by a reset.
      await chat(old, "neighbour", "not yours");
      await reset(old, "neighbour");
      assert.equal((await api(old, "GET", "/")).body.protocol, 2);
    } finally {
      await old.dispose();
    }

    const now = await startAgent({ persist, vars: { AUTO_TITLES: "on" } });
    try {
      // Several requests at once on the first wake-up: the migration runs once, before any of them.
      const [active, archived, hist] = await Promise.all([
        api(now, "GET", `/api/conversations?userId=${user}`),
        api(now, "GET", `/api/conversations?userId=${user}&archived=1`),
        history(now, user),
      ]);
      assert.equal(active.body.conversations.length, 1);
      const current = active.body.conversations[0];
      assert.equal(current.messageCount, 2);
      assert.equal(current.title, "the current one: chess openings");
      assert.deepEqual(strip(hist.body.messages), before.current);
      assert.equal(hist.body.conversationId, current.id);
      assert.deepEqual(archived.body.conversations.map((c) => c.messageCount), [6, 4]);
      assert.deepEqual(archived.body.conversations.map((c) => c.title), ["second chat: sourdough starter", "the first chat about Kyoto"]);
      const [second, first] = archived.body.conversations;
      assert.ok(first.id < second.id && second.id < current.id, "ids in creation order");
      assert.deepEqual(strip((await api(now, "GET", `/api/history?userId=${user}&conversationId=${second.id}`)).body.messages), before.second);
      const firstHistory = (await api(now, "GET", `/api/history?userId=${user}&conversationId=${first.id}`)).body.messages;
      assert.deepEqual(strip(firstHistory), before.first);
      // The line of messages became a branch: each the parent of the next, no siblings.
      firstHistory.forEach((m, i) => {
        assert.equal(m.parent, i === 0 ? null : firstHistory[i - 1].id);
        assert.deepEqual(m.siblings, [m.id]);
      });
      // Search was built from what was stored.
      const found = await api(now, "GET", `/api/search?userId=${user}&q=sourdough`);
      assert.ok(found.body.results.length >= 1);
      assert.ok(found.body.results.every((r) => r.chat === second.id && r.archived));
      // The old key still replays its turn.
      const replay = await chat(now, user, "the current one: chess openings", { "Idempotency-Key": "old-key" });
      assert.equal(replay.body.replayed, true);
      assert.equal(replay.body.messageCount, 2);
      // The current conversation goes on where it was; its title is the first words (no model call for old ones).
      const next = await chat(now, user, "which is best?");
      assert.equal(next.body.messageCount, 4);
      assert.equal(next.body.conversationId, current.id);
      assert.match(next.body.message, /the first was "the current one: chess openings"/);
      // The neighbour's empty open conversation held nothing and is gone; their archive is there.
      const theirs = await api(now, "GET", "/api/conversations?userId=neighbour&archived=1");
      assert.equal(theirs.body.conversations.length, 1);
      assert.equal((await api(now, "GET", "/api/conversations?userId=neighbour")).body.conversations.length, 0);
    } finally {
      await now.dispose();
    }
    // And a second start finds it migrated already.
    const again = await startAgent({ persist });
    try {
      assert.equal((await api(again, "GET", `/api/conversations?userId=${user}&archived=1`)).body.conversations.length, 2);
      assert.equal((await history(again, user)).body.messageCount, 4);
    } finally {
      await again.dispose();
    }
  });
});
