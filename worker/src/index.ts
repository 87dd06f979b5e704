/**
 * edgechat's edge agent: the Worker that answers the protocol of docs/protocol.md (the seed's contract
 * plus the `stream`, `history`, `reset` and `auth` extensions) and hands each user's turns to that
 * user's Durable Object.
 */

import { configuredToken, isAuthorized } from "./auth";
import { decodeUtf8, readCapped } from "./body";
import { readSettings, type Env } from "./config";
import type { Failure } from "./conversation";
import { ApiError, statusOf, type ErrorBody } from "./errors";
import { routePath } from "./routing";
import { parseCursor } from "./store";
import { DEFAULT_USER_ID, USER_ID_RULES, userIdProblem } from "./userid";

// Only handlers may be exported from the entry module: workerd binds every export.
export { Conversation } from "./conversation";

const SERVICE = "edgechat agent";
/** The version of docs/protocol.md's extensions this agent speaks, and the ones it offers. */
const PROTOCOL_VERSION = 1;
const CAPABILITIES = ["stream", "history", "reset", "history-pages"];
/** Larger bodies cannot fit any model's window; reading stops there (413 request_too_large). */
const MAX_BODY_BYTES = 4 * 1024 * 1024;
const MAX_HISTORY_LIMIT = 100_000;
/**
 * The most message JSON one history answer carries (docs/protocol.md, `history-pages`): older pages
 * are a `before` away. It keeps an answer within the 8 MiB a client reads, and the Worker's memory.
 */
const HISTORY_PAGE_BYTES = 4 * 1024 * 1024;

function corsHeaders(request: Request): Record<string, string> {
  // As the seed does: any origin may call, and the answer names it. No credentials mode, so a page
  // can only use the agent with a token it was given.
  const origin = request.headers.get("Origin");
  const headers: Record<string, string> = {
    "Access-Control-Allow-Origin": origin ?? "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Authorization, Accept",
    "Access-Control-Expose-Headers": "Retry-After",
    "Access-Control-Max-Age": "86400",
  };
  if (origin) headers.Vary = "Origin";
  return headers;
}

function json(request: Request, body: unknown, status = 200, extra: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", ...corsHeaders(request), ...extra },
  });
}

function errorResponse(request: Request, error: ErrorBody): Response {
  const extra: Record<string, string> = {};
  if (error.retryAfter !== undefined) extra["Retry-After"] = String(error.retryAfter);
  if (error.code === "unauthorized") extra["WWW-Authenticate"] = 'Bearer realm="edgechat"';
  return json(request, error, statusOf(error.code), extra);
}

function fail(request: Request, code: ErrorBody["code"], message: string, details?: string): Response {
  return errorResponse(request, new ApiError(code, message, details).toBody());
}

function isFailure(value: { ok: boolean }): value is Failure {
  return !value.ok;
}

/** The user id a request names: missing or empty means the seed's "default-user"; invalid ids are refused. */
function resolveUserId(raw: unknown): string | ApiError {
  if (raw === undefined || raw === null || raw === "") return DEFAULT_USER_ID;
  if (typeof raw !== "string") return new ApiError("bad_request", "userId must be a string.", `use ${USER_ID_RULES}`);
  const problem = userIdProblem(raw);
  if (problem) return new ApiError("bad_request", `Invalid user id: ${problem}.`, `use ${USER_ID_RULES}`);
  return raw;
}

async function readJsonBody(request: Request): Promise<Record<string, unknown> | ApiError> {
  const bytes = await readCapped(request, MAX_BODY_BYTES);
  if (bytes instanceof ApiError) return bytes;
  const text = decodeUtf8(bytes);
  if (text instanceof ApiError) return text;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return new ApiError("bad_request", "The request body is not valid JSON.");
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    return new ApiError("bad_request", "The request body must be a JSON object.");
  }
  return body as Record<string, unknown>;
}

function wantsStream(request: Request): boolean {
  return (request.headers.get("Accept") ?? "").toLowerCase().includes("text/event-stream");
}

function conversationOf(env: Env, userId: string): DurableObjectStub<import("./conversation").Conversation> {
  return env.CONVERSATIONS.get(env.CONVERSATIONS.idFromName(userId));
}

async function handleChat(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  const body = await readJsonBody(request);
  if (body instanceof ApiError) return errorResponse(request, body.toBody());
  const userId = resolveUserId(body.userId);
  if (userId instanceof ApiError) return errorResponse(request, userId.toBody());
  const message = body.message;
  if (typeof message !== "string" || message.trim() === "") {
    return fail(request, "bad_request", "The request needs a non-empty \"message\" string.");
  }
  const conversation = conversationOf(env, userId);
  if (wantsStream(request)) {
    const outcome = await conversation.chatStream(userId, message);
    if (isFailure(outcome)) return errorResponse(request, outcome.error);
    // A client hanging up aborts the request's signal (compatibility flag enable_request_signal) but
    // does not cancel a stream that came over RPC, so the object is told explicitly.
    const { turnId } = outcome;
    const stop = (): void => {
      ctx.waitUntil(conversation.stopTurn(turnId).then(() => undefined, () => undefined));
    };
    // A client that left while the turn waited for its queue or for the model has already aborted.
    if (request.signal.aborted) stop();
    else request.signal.addEventListener("abort", stop);
    return new Response(outcome.stream, {
      headers: {
        "Content-Type": "text/event-stream; charset=utf-8",
        "Cache-Control": "no-cache",
        ...corsHeaders(request),
      },
    });
  }
  const outcome = await conversation.chat(userId, message);
  if (isFailure(outcome)) return errorResponse(request, outcome.error);
  const answer: Record<string, unknown> = { message: outcome.message, messageCount: outcome.messageCount };
  if (outcome.usage) answer.usage = outcome.usage;
  return json(request, answer);
}

async function handleHistory(request: Request, env: Env, url: URL): Promise<Response> {
  const userId = resolveUserId(url.searchParams.get("userId"));
  if (userId instanceof ApiError) return errorResponse(request, userId.toBody());
  let limit: number | null = null;
  const rawLimit = url.searchParams.get("limit");
  if (rawLimit !== null) {
    limit = Number(rawLimit);
    if (!/^\d+$/.test(rawLimit) || limit < 1 || limit > MAX_HISTORY_LIMIT) {
      return fail(request, "bad_request", `limit must be a whole number from 1 to ${MAX_HISTORY_LIMIT}.`);
    }
  }
  const rawBefore = url.searchParams.get("before");
  const before = rawBefore === null ? null : parseCursor(rawBefore);
  if (rawBefore !== null && before === null) {
    return fail(request, "bad_request", "before is not a cursor this agent gave.", "use the previous value of a history answer");
  }
  const outcome = await conversationOf(env, userId).history(userId, limit, before, HISTORY_PAGE_BYTES);
  if (isFailure(outcome)) return errorResponse(request, outcome.error);
  return json(request, {
    userId: outcome.userId,
    messageCount: outcome.messageCount,
    messages: outcome.messages,
    previous: outcome.previous,
  });
}

async function handleReset(request: Request, env: Env): Promise<Response> {
  const body = await readJsonBody(request);
  if (body instanceof ApiError) return errorResponse(request, body.toBody());
  const userId = resolveUserId(body.userId);
  if (userId instanceof ApiError) return errorResponse(request, userId.toBody());
  const outcome = await conversationOf(env, userId).reset(userId);
  if (isFailure(outcome)) return errorResponse(request, outcome.error);
  return json(request, { ok: true, messageCount: outcome.messageCount, archived: outcome.archived });
}

function health(request: Request, env: Env): Response {
  return json(request, {
    status: "ok",
    service: SERVICE,
    timestamp: new Date().toISOString(),
    protocol: PROTOCOL_VERSION,
    capabilities: CAPABILITIES,
    auth: configuredToken(env.EDGECHAT_TOKEN) !== null,
    model: readSettings(env).model,
  });
}

async function route(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  const url = new URL(request.url);
  const pathname = routePath(url.pathname, env.BASE_PATH);
  const method = request.method;
  if (method === "OPTIONS") {
    // Preflights carry no credentials by design, so they are answered before the token check.
    return new Response(null, { status: 204, headers: corsHeaders(request) });
  }
  if (method === "GET" && pathname === "/") return health(request, env);

  const token = configuredToken(env.EDGECHAT_TOKEN);
  if (token !== null && !(await isAuthorized(request, token))) {
    return fail(request, "unauthorized", "A valid bearer token is required.", "send Authorization: Bearer <token>");
  }
  if (method === "POST" && pathname === "/api/chat") return handleChat(request, env, ctx);
  if (method === "GET" && pathname === "/api/history") return handleHistory(request, env, url);
  if (method === "POST" && pathname === "/api/reset") return handleReset(request, env);
  return fail(request, "not_found", "Not Found", `${method} ${url.pathname} is not a route of this agent`);
}

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    try {
      return await route(request, env, ctx);
    } catch (err) {
      console.error("unhandled error", err instanceof Error ? err.stack ?? err.message : String(err));
      return fail(request, "internal", "Internal server error");
    }
  },
} satisfies ExportedHandler<Env>;
