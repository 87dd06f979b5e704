// How fast the Worker's search answers over a large library, in workerd: 1,000 conversations of 100
// messages (100,000 messages) in one user's Durable Object, against a user with one conversation as
// the baseline, in the same run.
//
// Usage: node scripts/bench-search.mjs [--conversations 1000] [--messages 100] [--runs 31]
//
// Seeding 100,000 messages through the chat route would take an hour of model stubs; instead the
// Worker creates each user's database (one chat), is stopped, and Python's sqlite3 fills the tables of
// the persisted Durable Object file in the Worker's own schema (then rebuilds the FTS5 index), and the
// Worker is started again on it. What is timed is the HTTP request into workerd, as a client sees it.

import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startAgent } from "./harness.mjs";

const { values } = parseArgs({
  options: {
    conversations: { type: "string", default: "1000" },
    messages: { type: "string", default: "100" },
    runs: { type: "string", default: "31" },
  },
});
const CONVERSATIONS = Number(values.conversations);
const MESSAGES = Number(values.messages);
const RUNS = Number(values.runs);

const SEED = String.raw`
import random, sqlite3, sys, time
path, conversations, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(7)
B32 = "0123456789abcdefghjkmnpqrstvwxyz"
def b32(n, k):
    s = ""
    for _ in range(k):
        s = B32[n % 32] + s; n //= 32
    return s
syll = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "shi", "pa", "de", "gu", "zo", "fe", "ba", "ri"]
vocab = ["".join(rnd.choice(syll) for _ in range(rnd.randint(2, 4))) for _ in range(5000)]
db = sqlite3.connect(path)
db.execute("DELETE FROM messages"); db.execute("DELETE FROM conversations")
t0 = int(time.time() * 1000) - conversations * per * 1000
seq = 0
for c in range(conversations):
    created = t0 + c * per * 1000
    cid = db.execute(
        "INSERT INTO conversations (started_at, public_id, title, title_source, updated_at, message_count) VALUES (?, ?, ?, 'words', ?, 0) RETURNING id",
        (time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(created / 1000)), b32(created, 10) + b32(c, 4), "conversation %d" % c,
         time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime((created + per * 1000) / 1000)))).fetchone()[0]
    parent = None
    rows = []
    for m in range(per):
        seq += 1
        words = [rnd.choice(vocab) for _ in range(rnd.randint(8, 60))]
        if rnd.random() < 0.001: words.insert(3, "needlerare")
        if m % 10 == 0: words.append("common%d" % (m // 10))
        rows.append((seq, cid, "user" if m % 2 == 0 else "assistant", " ".join(words),
                     time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime((created + m * 1000) / 1000)), parent, m + 1))
        parent = seq
    db.executemany("INSERT INTO messages (seq, conversation_id, role, content, created_at, stopped, truncated, parent, depth) VALUES (?, ?, ?, ?, ?, 0, 0, ?, ?)", rows)
    db.execute("UPDATE conversations SET leaf = ?, message_count = ? WHERE id = ?", (parent, per, cid))
db.execute("INSERT INTO message_fts (message_fts) VALUES ('rebuild')")
db.commit()
print(seq, vocab[0], vocab[1])
`;

/** A persisted agent with `userId` created (one chat), stopped; returns the directory and its DO file. */
async function prepare(userId) {
  const dir = mkdtempSync(join(tmpdir(), "edgechat-bench-"));
  const agent = await startAgent({ persist: dir });
  await agent.fetch("/api/chat", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ userId, message: "hello there, a first message" }),
  });
  await agent.dispose();
  const objects = join(dir, "edgechat-agent-Conversation");
  const file = readdirSync(objects).find((f) => f.endsWith(".sqlite") && f !== "metadata.sqlite");
  return { dir, file: join(objects, file) };
}

async function time(agent, path) {
  const timings = [];
  let last;
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    const res = await agent.fetch(path);
    last = await res.json();
    timings.push(performance.now() - t0);
    if (res.status !== 200) throw new Error(`${path}: ${res.status} ${JSON.stringify(last)}`);
  }
  timings.sort((a, b) => a - b);
  return { median: timings[Math.floor(timings.length / 2)], p90: timings[Math.floor(timings.length * 0.9)], last };
}

const big = await prepare("big");
const small = await prepare("small");
const t0 = performance.now();
const [count, w1, w2] = execFileSync("python3", ["-c", SEED, big.file, String(CONVERSATIONS), String(MESSAGES)], { encoding: "utf8" })
  .trim()
  .split(" ");
console.log(`seeded ${count} messages in ${CONVERSATIONS} conversations in ${((performance.now() - t0) / 1000).toFixed(1)} s (python sqlite3)`);

const bigAgent = await startAgent({ persist: big.dir });
const smallAgent = await startAgent({ persist: small.dir });
try {
  // Wake both objects (the first request opens the database).
  await bigAgent.fetch("/api/search?userId=big&q=warm");
  await smallAgent.fetch("/api/search?userId=small&q=warm");
  const cases = [
    ["health check (baseline)", smallAgent, "/"],
    ["list, 1 conversation (baseline)", smallAgent, "/api/conversations?userId=small"],
    ["search, 1 conversation (baseline)", smallAgent, "/api/search?userId=small&q=first"],
    [`search a common word (${w1})`, bigAgent, `/api/search?userId=big&q=${w1}`],
    ["search two words", bigAgent, `/api/search?userId=big&q=${w1}%20${w2}`],
    ["search a prefix (ka)", bigAgent, "/api/search?userId=big&q=ka"],
    ["search a one-letter prefix (k)", bigAgent, "/api/search?userId=big&q=k"],
    ["search a rare word (0.1% of messages)", bigAgent, "/api/search?userId=big&q=needlerare"],
    ["search a word in 10% (common3)", bigAgent, "/api/search?userId=big&q=common3"],
    ["search, no match", bigAgent, "/api/search?userId=big&q=zzzznomatch"],
    ["list, 1,000 conversations", bigAgent, "/api/conversations?userId=big"],
    ["history page, 100-message conversation", bigAgent, "/api/history?userId=big&limit=50"],
  ];
  console.log(`| request | median ms | p90 ms | results |`);
  console.log(`|---|---|---|---|`);
  for (const [label, agent, path] of cases) {
    const { median, p90, last } = await time(agent, path);
    const n = last.results?.length ?? last.conversations?.length ?? last.messages?.length ?? "";
    console.log(`| ${label} | ${median.toFixed(1)} | ${p90.toFixed(1)} | ${n} |`);
  }
} finally {
  await Promise.all([bigAgent.dispose(), smallAgent.dispose()]);
  rmSync(big.dir, { recursive: true, force: true });
  rmSync(small.dir, { recursive: true, force: true });
}
