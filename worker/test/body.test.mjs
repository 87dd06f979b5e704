// Request bodies are capped while they arrive (4 MiB): a body past the cap is refused with 413
// request_too_large as soon as the cap is passed, whatever its Content-Length says, and the rest of
// it is never read. (The Worker used to buffer the whole body first: 200 MB chunked took workerd to
// 521 MB; a production isolate has 128 MB.)

import assert from "node:assert/strict";
import { readFileSync, readdirSync, readlinkSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { connect } from "node:net";
import { after, before, describe, it } from "node:test";
import { startAgent } from "../scripts/harness.mjs";
import { history, post } from "./helpers.mjs";

const CAP = 4 * 1024 * 1024;
const MiB = 1024 * 1024;

/** The pid of the process listening on 127.0.0.1:`port` (Linux /proc), or null when it cannot be found. */
function listenerOf(port) {
  try {
    const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
    const inodes = new Set();
    for (const line of readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      // local address, state 0A (LISTEN), inode
      if (fields[1]?.endsWith(`:${hexPort}`) && fields[3] === "0A") inodes.add(`socket:[${fields[9]}]`);
    }
    if (inodes.size === 0) return null;
    for (const pid of readdirSync("/proc")) {
      if (!/^\d+$/.test(pid)) continue;
      let fds = [];
      try {
        fds = readdirSync(`/proc/${pid}/fd`);
      } catch {
        continue;
      }
      for (const fd of fds) {
        try {
          if (inodes.has(readlinkSync(`/proc/${pid}/fd/${fd}`))) return Number(pid);
        } catch {
          // Closed meanwhile.
        }
      }
    }
  } catch {
    // Not Linux, or /proc is not readable.
  }
  return null;
}

/** Peak resident memory of a process in bytes (VmHWM), or null when it cannot be read. */
function peakRss(pid) {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

let agent;
let workerd = null;
before(async () => {
  // On a real socket: chunked uploads and raw HTTP need one. workerd itself listens on it.
  agent = await startAgent({ host: "127.0.0.1", port: 0 });
  workerd = listenerOf(Number(agent.url.port));
});
after(async () => {
  await agent?.dispose();
});

/**
 * POSTs a chunked body (no Content-Length) made of `chunks`, one write at a time, each waited for so
 * an early answer is read as soon as it comes, and stops writing when the answer arrives. Resolves
 * { status, body, written } with the bytes written by the time of the answer, or { reset, written }
 * when the connection was reset before an answer could be read: a server that stops reading an
 * upload closes the connection with data unread, and the peer's RST can beat the answer to a client
 * that is still writing.
 */
function chunkedUpload(path, chunks) {
  return new Promise((resolve, reject) => {
    const req = httpRequest(new URL(path, agent.url), { method: "POST", headers: { "Content-Type": "application/json" } });
    let written = 0;
    let answered = false;
    req.on("response", (res) => {
      answered = true;
      const writtenWhenAnswered = written;
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (piece) => (text += piece));
      res.on("end", () => {
        req.destroy();
        resolve({ status: res.statusCode, body: JSON.parse(text), written: writtenWhenAnswered });
      });
      res.on("error", () => resolve({ reset: true, written: writtenWhenAnswered }));
    });
    req.on("error", (err) => {
      if (answered) return;
      if (err.code === "ECONNRESET" || err.code === "EPIPE") resolve({ reset: true, written });
      else reject(err);
    });
    (async () => {
      for (const chunk of chunks) {
        if (answered || req.destroyed) return;
        await new Promise((done) => req.write(chunk, () => done()));
        written += chunk.length;
      }
      if (!answered && !req.destroyed) req.end();
    })();
  });
}

/** Sends raw bytes on a fresh connection; resolves { status, body } of the answer, or { reset } without one. */
function rawHttp(head, body) {
  return new Promise((resolve, reject) => {
    const socket = connect(Number(agent.url.port), "127.0.0.1");
    let got = "";
    socket.setEncoding("latin1");
    socket.on("data", (data) => {
      got += data;
      // One answer is all a test needs: stop once its body is complete.
      const end = got.indexOf("\r\n\r\n");
      const length = /\r\ncontent-length: (\d+)/i.exec(got);
      if (end >= 0 && length && got.length >= end + 4 + Number(length[1])) socket.destroy();
    });
    socket.on("close", () => {
      const status = /^HTTP\/1\.1 (\d{3})/.exec(got);
      if (!status) return resolve({ reset: true });
      const text = got.slice(got.indexOf("\r\n\r\n") + 4);
      resolve({ status: Number(status[1]), body: text ? JSON.parse(text) : null });
    });
    socket.on("error", (err) => {
      if (err.code !== "ECONNRESET" && err.code !== "EPIPE") reject(err);
    });
    socket.write(head);
    if (body) socket.write(body);
  });
}

/**
 * Runs `attempt` until it gets an answer (at most 5 times): each attempt must pass `check` whether or
 * not it was answered (a reset is the server refusing to read on, never a pass by itself).
 */
async function answered(attempt, check = () => undefined) {
  for (let i = 0; i < 5; i++) {
    const outcome = await attempt();
    check(outcome);
    if (!outcome.reset) return outcome;
  }
  assert.fail("five attempts in a row were reset before the answer could be read");
}

function* repeated(chunk, total) {
  for (let sent = 0; sent < total; sent += chunk.length) yield chunk;
}

function* pieces(buffer, size) {
  for (let at = 0; at < buffer.length; at += size) yield buffer.subarray(at, at + size);
}

describe("request bodies are capped while they arrive", () => {
  it("refuses a 128 MiB chunked body with 413 request_too_large once 4 MiB are in, without buffering it", async () => {
    const peakBefore = workerd === null ? null : peakRss(workerd);
    const started = Date.now();
    const res = await answered(
      () => chunkedUpload("/api/chat", repeated(Buffer.alloc(64 * 1024, 0x61), 128 * MiB)),
      // Answered (or cut off) while the upload was still going: the cap plus a few MiB of socket
      // buffers, not the whole body.
      (outcome) => assert.ok(outcome.written < 32 * MiB, `${(outcome.written / MiB).toFixed(1)} MiB written before the answer`),
    );
    const ms = Date.now() - started;
    assert.equal(res.status, 413);
    assert.equal(res.body.code, "request_too_large");
    assert.equal(typeof res.body.error, "string");
    let grew = null;
    if (peakBefore !== null) {
      grew = peakRss(workerd) - peakBefore;
      assert.ok(grew < 48 * MiB, `workerd's peak memory grew ${(grew / MiB).toFixed(1)} MiB`);
    }
    console.log(
      `# 128 MiB chunked upload: 413 after ${(res.written / MiB).toFixed(1)} MiB written, ${ms} ms; ` +
        `workerd peak RSS grew ${grew === null ? "(not measured)" : `${(grew / MiB).toFixed(1)} MiB`}`,
    );
    // The agent is fine afterwards.
    const ok = await post(agent, "/api/chat", { userId: "after-flood", message: "hi" });
    assert.equal(ok.status, 200);
    await ok.arrayBuffer();
  });

  it("counts bytes, not characters: 5 MiB of two-byte characters sent chunked is refused", async () => {
    // 2.6 million characters, under 4 Mi in `text.length`, but 5.2 MB on the wire.
    const body = Buffer.from(JSON.stringify({ userId: "wide", pad: "é".repeat(2_600_000) }));
    assert.ok(body.length > CAP);
    const res = await answered(() => chunkedUpload("/api/reset", pieces(body, 100_000)));
    assert.equal(res.status, 413);
    assert.equal(res.body.code, "request_too_large");
  });

  it("does not trust a Content-Length under the cap when the body is chunked past it", async () => {
    const piece = `${(64 * 1024).toString(16)}\r\n${"a".repeat(64 * 1024)}\r\n`;
    const res = await answered(() =>
      rawHttp(
        "POST /api/chat HTTP/1.1\r\nHost: agent\r\nContent-Type: application/json\r\n" +
          "Content-Length: 20\r\nTransfer-Encoding: chunked\r\n\r\n",
        `${piece.repeat(8 * 16)}0\r\n\r\n`, // 8 MiB
      ),
    );
    // Either the runtime refuses the ambiguous framing itself, or it hands the chunked body over and
    // the Worker's count refuses it: never a turn.
    assert.ok(res.status === 413 || res.status === 400, String(res.status));
    if (res.status === 413) assert.equal(res.body.code, "request_too_large");
  });

  it("refuses a declared Content-Length over the cap at once, before any of the body is sent", async () => {
    const res = await answered(() => rawHttp("POST /api/chat HTTP/1.1\r\nHost: agent\r\nContent-Length: 50000000\r\n\r\n"));
    assert.equal(res.status, 413);
    assert.equal(res.body.code, "request_too_large");
  });

  it("takes a body of exactly 4 MiB and refuses one byte more", async () => {
    const make = (size) => {
      const skeleton = JSON.stringify({ userId: "edge-of-cap", pad: "" });
      return skeleton.replace('"pad":""', `"pad":"${"p".repeat(size - skeleton.length)}"`);
    };
    const exact = make(CAP);
    assert.equal(Buffer.byteLength(exact), CAP);
    const ok = await post(agent, "/api/reset", exact);
    assert.equal(ok.status, 200);
    assert.equal((await ok.json()).ok, true);
    const over = await post(agent, "/api/reset", make(CAP + 1));
    assert.equal(over.status, 413);
    assert.equal((await over.json()).code, "request_too_large");
  });

  it("refuses a body that is not UTF-8 with 400 bad_request, storing nothing", async () => {
    const bytes = Buffer.concat([Buffer.from('{"userId":"latin","message":"caf'), Buffer.from([0xe9]), Buffer.from('"}')]);
    const res = await agent.fetch("/api/chat", { method: "POST", headers: { "Content-Type": "application/json" }, body: bytes });
    assert.equal(res.status, 400);
    const answer = await res.json();
    assert.equal(answer.code, "bad_request");
    assert.match(answer.error, /UTF-8/);
    assert.equal((await history(agent, "latin")).body.messageCount, 0);
  });

  it("still takes an ordinary body sent chunked in small pieces", async () => {
    const body = Buffer.from(JSON.stringify({ userId: "chunky", message: "héllo in pieces" }));
    const res = await chunkedUpload("/api/chat", pieces(body, 3));
    assert.equal(res.status, 200);
    assert.equal(res.body.messageCount, 2);
    assert.match(res.body.message, /héllo in pieces/);
  });
});
