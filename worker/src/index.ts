/**
 * edgechat's edge agent: the Worker that answers the protocol of docs/protocol.md (the seed's contract
 * plus the `stream`, `history`, `reset`, `auth`, `whoami` and `idempotency` extensions) and hands each
 * user's turns to that user's Durable Object. Who the user is comes from identity.ts.
 */

import { decodeUtf8, readCapped } from "./body";
import { readSettings, type Env } from "./config";
import type { Failure } from "./conversation";
import { ApiError, statusOf, type ErrorBody } from "./errors";
import {
  authenticate,
  isAdmin,
  isMisconfigured,
  readServiceConfig,
  scopedUserId,
  type Identity,
  type ServiceConfig,
} from "./identity";
import { routePath } from "./routing";
import { parseCursor } from "./store";
import { USER_ID_RULES, userIdProblem } from "./userid";

// Only handlers may be exported from the entry module: workerd binds every export.
export { Conversation } from "./conversation";

const SERVICE = "edgechat agent";
/** The version of docs/protocol.md's extensions this agent speaks, and the ones it offers. */
const PROTOCOL_VERSION = 2;
const CAPABILITIES = ["stream", "history", "reset", "whoami", "idempotency", "history-pages"];
/** An Idempotency-Key: 1 to 255 visible ASCII characters (a UUID is the usual choice). */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;
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
    "Access-Control-Allow-Headers": "Content-Type, Authorization, Accept, Idempotency-Key",
    "Access-Control-Expose-Headers": "Retry-After, Idempotent-Replayed",
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

/**
 * The user id a request acts for (identity.ts, `scopedUserId`): the client's when the mode lets it name
 * one (missing or empty: the seed's "default-user"), else the verified user's; anyone else is 403.
 */
function resolveUserId(raw: unknown, identity: Identity): string | ApiError {
  return scopedUserId(identity, raw);
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

async function handleChat(request: Request, env: Env, ctx: ExecutionContext, identity: Identity): Promise<Response> {
  const body = await readJsonBody(request);
  if (body instanceof ApiError) return errorResponse(request, body.toBody());
  const userId = resolveUserId(body.userId, identity);
  if (userId instanceof ApiError) return errorResponse(request, userId.toBody());
  const message = body.message;
  if (typeof message !== "string" || message.trim() === "") {
    return fail(request, "bad_request", "The request needs a non-empty \"message\" string.");
  }
  const key = request.headers.get("Idempotency-Key");
  if (key !== null && !IDEMPOTENCY_KEY.test(key)) {
    return fail(request, "bad_request", "Invalid Idempotency-Key.", "use 1 to 255 visible ASCII characters, such as a UUID");
  }
  const options = key !== null ? { idempotencyKey: key } : {};
  const replayed: Record<string, string> = { "Idempotent-Replayed": "true" };
  const conversation = conversationOf(env, userId);
  if (wantsStream(request)) {
    const outcome = await conversation.chatStream(userId, message, options);
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
        ...(outcome.replayed ? replayed : {}),
      },
    });
  }
  const outcome = await conversation.chat(userId, message, options);
  if (isFailure(outcome)) return errorResponse(request, outcome.error);
  const answer: Record<string, unknown> = { message: outcome.message, messageCount: outcome.messageCount };
  if (outcome.usage) answer.usage = outcome.usage;
  if (outcome.replayed) answer.replayed = true;
  if (outcome.stopped) answer.stopped = true;
  return json(request, answer, 200, outcome.replayed ? replayed : {});
}

async function handleHistory(request: Request, env: Env, url: URL, identity: Identity): Promise<Response> {
  const userId = resolveUserId(url.searchParams.get("userId"), identity);
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

async function handleReset(request: Request, env: Env, identity: Identity): Promise<Response> {
  const body = await readJsonBody(request);
  if (body instanceof ApiError) return errorResponse(request, body.toBody());
  const userId = resolveUserId(body.userId, identity);
  if (userId instanceof ApiError) return errorResponse(request, userId.toBody());
  const outcome = await conversationOf(env, userId).reset(userId);
  if (isFailure(outcome)) return errorResponse(request, outcome.error);
  return json(request, { ok: true, messageCount: outcome.messageCount, archived: outcome.archived });
}

/** `GET /api/whoami`: who the agent takes the caller for. */
function handleWhoami(request: Request, url: URL, identity: Identity): Response {
  const userId = resolveUserId(url.searchParams.get("userId") ?? undefined, identity);
  if (userId instanceof ApiError) return errorResponse(request, userId.toBody());
  const answer: Record<string, unknown> = { userId: identity.userId, auth: identity.mode };
  if (identity.expiresAtMs !== undefined) answer.expiresAt = new Date(identity.expiresAtMs).toISOString();
  return json(request, answer);
}

/** `POST /api/admin/revoke` (user-tokens mode, with EDGECHAT_ADMIN_TOKEN): invalidates a user's tokens issued so far. */
async function handleRevoke(request: Request, env: Env, config: ServiceConfig): Promise<Response> {
  if (config.mode !== "user-tokens" || config.adminToken === null) {
    return fail(request, "not_found", "Not Found", "revocation needs identity mode user-tokens and the EDGECHAT_ADMIN_TOKEN secret");
  }
  if (!(await isAdmin(request, config))) {
    return fail(request, "unauthorized", "The admin token is required.", "send Authorization: Bearer <EDGECHAT_ADMIN_TOKEN>");
  }
  const body = await readJsonBody(request);
  if (body instanceof ApiError) return errorResponse(request, body.toBody());
  const userId = body.userId;
  if (typeof userId !== "string" || userIdProblem(userId) !== null) {
    return fail(request, "bad_request", "The request needs the \"userId\" to revoke.", `use ${USER_ID_RULES}`);
  }
  const { notBefore } = await conversationOf(env, userId).revoke();
  return json(request, { ok: true, userId, notBefore: new Date(notBefore).toISOString() });
}

function health(request: Request, env: Env, config: ServiceConfig): Response {
  return json(request, {
    status: "ok",
    service: SERVICE,
    timestamp: new Date().toISOString(),
    protocol: PROTOCOL_VERSION,
    capabilities: CAPABILITIES,
    // Protocol 1 readers take `auth` as "a credential is needed"; `authMode` says which (protocol 2).
    auth: config.mode !== "none",
    authMode: config.mode,
    model: readSettings(env).model,
    ...(config.limits.dailyTokens !== null || config.limits.turnsPerMinute !== null
      ? { limits: { userDailyTokens: config.limits.dailyTokens, userTurnsPerMinute: config.limits.turnsPerMinute } }
      : {}),
  });
}

/**
 * Verifies the caller and asks the user's object about the credential (a revocation, another identity
 * bound to the id). Returns who it is, or the refusal to answer with.
 */
async function identify(request: Request, env: Env, config: ServiceConfig): Promise<Identity | Response> {
  const identity = await authenticate(request, config, Date.now());
  if (identity instanceof ApiError) return errorResponse(request, identity.toBody());
  if (identity.userId !== null && (identity.issuedAtMs !== undefined || identity.principal !== undefined)) {
    const check: { issuedAtMs?: number; principal?: string } = {};
    if (identity.issuedAtMs !== undefined) check.issuedAtMs = identity.issuedAtMs;
    if (identity.principal !== undefined) check.principal = identity.principal;
    const verdict = await conversationOf(env, identity.userId).authorize(check);
    if (isFailure(verdict)) return errorResponse(request, verdict.error);
  }
  return identity;
}

/** The configuration problems last logged by this isolate: logged once, not on every request. */
let loggedProblems = "";

async function route(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  const url = new URL(request.url);
  const pathname = routePath(url.pathname, env.BASE_PATH);
  const method = request.method;
  if (method === "OPTIONS") {
    // Preflights carry no credentials by design, so they are answered before the token check.
    return new Response(null, { status: 204, headers: corsHeaders(request) });
  }
  const config = readServiceConfig(env);
  if (isMisconfigured(config)) {
    // Fail closed: a half-set secret never leaves the agent open. The problems name variables, not values.
    const problems = config.problems.join("; ");
    if (problems !== loggedProblems) console.error("misconfigured:", problems);
    loggedProblems = problems;
    return json(
      request,
      {
        status: "misconfigured",
        error: "The agent is misconfigured and refuses to serve.",
        code: "misconfigured",
        details: problems,
      },
      statusOf("misconfigured"),
    );
  }
  if (method === "GET" && pathname === "/") return health(request, env, config);
  if (method === "POST" && pathname === "/api/admin/revoke") return handleRevoke(request, env, config);

  const identity = await identify(request, env, config);
  if (identity instanceof Response) return identity;
  if (method === "POST" && pathname === "/api/chat") return handleChat(request, env, ctx, identity);
  if (method === "GET" && pathname === "/api/history") return handleHistory(request, env, url, identity);
  if (method === "POST" && pathname === "/api/reset") return handleReset(request, env, identity);
  if (method === "GET" && pathname === "/api/whoami") return handleWhoami(request, url, identity);
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
