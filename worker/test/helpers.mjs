// Helpers shared by the Worker's tests: requests in the protocol's shapes, an SSE reader, and the
// data files shared with the Python package.

import { readFileSync } from "node:fs";

export const JSON_HEADERS = { "Content-Type": "application/json" };

export function post(agent, path, body, headers = {}) {
  return agent.fetch(path, {
    method: "POST",
    headers: { ...JSON_HEADERS, ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** Sends one chat turn as JSON; returns { status, body, headers }. */
export async function chat(agent, userId, message, headers = {}) {
  const res = await post(agent, "/api/chat", { userId, message }, headers);
  return { status: res.status, body: await res.json(), headers: res.headers };
}

/** Sends one chat turn asking for a stream; returns { status, contentType, events } (or body for JSON answers). */
export async function chatStream(agent, userId, message, headers = {}) {
  const res = await post(agent, "/api/chat", { userId, message }, { Accept: "text/event-stream, application/json", ...headers });
  const contentType = res.headers.get("Content-Type") ?? "";
  if (!contentType.startsWith("text/event-stream")) {
    return { status: res.status, contentType, body: await res.json(), headers: res.headers };
  }
  return { status: res.status, contentType, events: parseSse(await res.text()), headers: res.headers };
}

/** Parses a whole SSE body into [{event, data}] with `data` decoded from JSON; comments are dropped. */
export function parseSse(text) {
  const events = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    let event = "message";
    const data = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith(":") || line === "") continue;
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    }
    if (data.length > 0) events.push({ event, data: JSON.parse(data.join("\n")) });
  }
  return events;
}

export async function history(agent, userId, query = "", headers = {}) {
  const res = await agent.fetch(`/api/history?userId=${encodeURIComponent(userId)}${query}`, { headers });
  return { status: res.status, body: await res.json() };
}

export async function reset(agent, userId, headers = {}) {
  const res = await post(agent, "/api/reset", { userId }, headers);
  return { status: res.status, body: await res.json() };
}

/** The data files the Worker shares with the Python package (src/edgechat_tui/core/data/). */
const SHARED_DATA = new URL("../../src/edgechat_tui/core/data/", import.meta.url);
export const SHARED_MODELS = JSON.parse(readFileSync(new URL("models.json", SHARED_DATA), "utf8"));
export const USER_ID_CASES = JSON.parse(readFileSync(new URL("userid_cases.json", SHARED_DATA), "utf8"));
