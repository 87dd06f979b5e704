/**
 * edgechat's edge agent: the Worker that answers the protocol of docs/protocol.md (the seed's contract
 * plus the `stream`, `history`, `reset`, `auth`, `whoami` and `idempotency` extensions) and hands each
 * user's turns to that user's Durable Object. Who the user is comes from identity.ts.
 */

import { decodeUtf8, readCapped } from "./body";
import { readSettings, type Env } from "./config";
import type { ChatReply, ChatStream, Failure, TurnRequest } from "./conversation";
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
import { CONVERSATION_ID, queryTerms } from "./library";
import { parseCursor } from "./store";
import { USER_ID_RULES, userIdProblem } from "./userid";

// Only handlers may be exported from the entry module: workerd binds every export.
export { Conversation } from "./conversation";

const SERVICE = "edgechat agent";
/** The version of docs/protocol.md's extensions this agent speaks, and the ones it offers. */
const PROTOCOL_VERSION = 3;
const CAPABILITIES = ["stream", "history", "reset", "whoami", "idempotency", "history-pages", "conversations", "search"];
/** Longest title accepted before it is cleaned and cut (to MAX_TITLE_CHARS). */
const MAX_TITLE_INPUT = 10_000;
const MAX_QUERY_CHARS = 500;
const SEARCH_LIMIT_DEFAULT = 50;
const SEARCH_LIMIT_MAX = 200;
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

async function readJsonBody(request: Request, emptyIsObject = false): Promise<Record<string, unknown> | ApiError> {
  const bytes = await readCapped(request, MAX_BODY_BYTES);
  if (bytes instanceof ApiError) return bytes;
  const text = decodeUtf8(bytes);
  if (text instanceof ApiError) return text;
  if (emptyIsObject && text.trim() === "") return {};
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

/** The JSON answer (or `done` event) of a turn. */
function replyBody(outcome: ChatReply): Record<string, unknown> {
  const answer: Record<string, unknown> = { message: outcome.message, messageCount: outcome.messageCount };
  if (outcome.usage) answer.usage = outcome.usage;
  if (outcome.conversationId !== undefined) answer.conversationId = outcome.conversationId;
  if (outcome.messageId !== undefined) answer.messageId = outcome.messageId;
  if (outcome.userMessageId !== undefined) answer.userMessageId = outcome.userMessageId;
  if (outcome.truncated !== undefined) answer.truncated = outcome.truncated;
  if (outcome.appended !== undefined) answer.appended = outcome.appended;
  if (outcome.replayed) answer.replayed = true;
  if (outcome.stopped) answer.stopped = true;
  return answer;
}

/** A conversation id from a request: absent, valid, or a 400. */
function conversationIdOf(raw: unknown): string | undefined | ApiError {
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== "string" || !CONVERSATION_ID.test(raw)) {
    return new ApiError("bad_request", "Invalid conversationId.", "a conversation id is 14 characters of 0-9 and a-z without i, l, o, u");
  }
  return raw;
}

/** A message id from a request: absent, a positive whole number, or a 400. */
function messageIdOf(raw: unknown, required: boolean): number | undefined | ApiError {
  if ((raw === undefined || raw === null) && !required) return undefined;
  if (typeof raw !== "number" || !Number.isSafeInteger(raw) || raw < 1) {
    return new ApiError("bad_request", "The request needs a \"messageId\": a message's id from the history.", "a whole number from 1");
  }
  return raw;
}

/**
 * Runs one turn (a chat, an edit, a regeneration or a continuation) in the user's object and answers
 * it as the client asked: server-sent events or JSON.
 */
async function runTurn(
  request: Request,
  env: Env,
  ctx: ExecutionContext,
  userId: string,
  turn: TurnRequest,
): Promise<Response> {
  const key = request.headers.get("Idempotency-Key");
  if (key !== null && !IDEMPOTENCY_KEY.test(key)) {
    return fail(request, "bad_request", "Invalid Idempotency-Key.", "use 1 to 255 visible ASCII characters, such as a UUID");
  }
  const options = key !== null ? { idempotencyKey: key } : {};
  const replayed: Record<string, string> = { "Idempotent-Replayed": "true" };
  const conversation = conversationOf(env, userId);
  // A plain chat goes as before (its message alone), so a turn in flight across an upgrade replays.
  const asked: string | TurnRequest = turn.kind === "chat" && turn.conversationId === undefined ? turn.message! : turn;
  if (wantsStream(request)) {
    const outcome: ChatStream | Failure = await conversation.chatStream(userId, asked, options);
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
  const outcome: ChatReply | Failure = await conversation.chat(userId, asked, options);
  if (isFailure(outcome)) return errorResponse(request, outcome.error);
  return json(request, replyBody(outcome), 200, outcome.replayed ? replayed : {});
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
  const conversationId = conversationIdOf(body.conversationId);
  if (conversationId instanceof ApiError) return errorResponse(request, conversationId.toBody());
  const turn: TurnRequest = { kind: "chat", message };
  if (conversationId !== undefined) turn.conversationId = conversationId;
  return runTurn(request, env, ctx, userId, turn);
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
  const conversationId = conversationIdOf(url.searchParams.get("conversationId") ?? undefined);
  if (conversationId instanceof ApiError) return errorResponse(request, conversationId.toBody());
  const outcome = await conversationOf(env, userId).history(userId, limit, before, HISTORY_PAGE_BYTES, conversationId ?? null);
  if (isFailure(outcome)) return errorResponse(request, outcome.error);
  return json(request, {
    userId: outcome.userId,
    conversationId: outcome.conversationId,
    title: outcome.title,
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
  return json(request, {
    ok: true,
    messageCount: outcome.messageCount,
    archived: outcome.archived,
    conversationId: outcome.conversationId,
  });
}

/** `GET /api/conversations[?archived=1|?deleted=1]`: the user's conversations, newest activity first. */
async function handleList(request: Request, env: Env, url: URL, identity: Identity): Promise<Response> {
  const userId = resolveUserId(url.searchParams.get("userId"), identity);
  if (userId instanceof ApiError) return errorResponse(request, userId.toBody());
  const flag = (name: string): boolean | ApiError => {
    const raw = url.searchParams.get(name);
    if (raw === null || raw === "0" || raw === "false") return false;
    if (raw === "1" || raw === "true") return true;
    return new ApiError("bad_request", `${name} must be 1 or 0.`);
  };
  const archived = flag("archived");
  const deleted = flag("deleted");
  if (archived instanceof ApiError) return errorResponse(request, archived.toBody());
  if (deleted instanceof ApiError) return errorResponse(request, deleted.toBody());
  if (archived && deleted) return fail(request, "bad_request", "Ask for archived or deleted conversations, not both.");
  const outcome = await conversationOf(env, userId).listConversations(userId, deleted ? "trash" : archived ? "archived" : "active");
  if (isFailure(outcome)) return errorResponse(request, outcome.error);
  return json(request, { userId, conversations: outcome.conversations, current: outcome.current });
}

/** `POST /api/conversations` with `{"title"?}`: a new, empty conversation, now the most recent. */
async function handleCreate(request: Request, env: Env, identity: Identity): Promise<Response> {
  const body = await readJsonBody(request, true);
  if (body instanceof ApiError) return errorResponse(request, body.toBody());
  const userId = resolveUserId(body.userId, identity);
  if (userId instanceof ApiError) return errorResponse(request, userId.toBody());
  const title = body.title;
  if (title !== undefined && title !== null && (typeof title !== "string" || title.length > MAX_TITLE_INPUT)) {
    return fail(request, "bad_request", "title must be a string.", `at most ${MAX_TITLE_INPUT} characters`);
  }
  const outcome = await conversationOf(env, userId).createConversation(userId, typeof title === "string" ? title : null);
  if (isFailure(outcome)) return errorResponse(request, outcome.error);
  return json(request, { conversation: outcome.conversation });
}

const ACTIONS = new Set(["rename", "archive", "restore", "delete", "switch", "regenerate", "edit", "continue"]);

/** `GET /api/conversations/{id}` and `POST /api/conversations/{id}/{action}`. */
async function handleConversation(
  request: Request,
  env: Env,
  ctx: ExecutionContext,
  url: URL,
  identity: Identity,
  id: string,
  action: string | null,
): Promise<Response> {
  if (request.method === "GET" && action === null) {
    if (!CONVERSATION_ID.test(id)) return errorResponse(request, (conversationIdOf(id) as ApiError).toBody());
    const userId = resolveUserId(url.searchParams.get("userId"), identity);
    if (userId instanceof ApiError) return errorResponse(request, userId.toBody());
    const outcome = await conversationOf(env, userId).getConversation(userId, id);
    if (isFailure(outcome)) return errorResponse(request, outcome.error);
    return json(request, { conversation: outcome.conversation });
  }
  if (request.method !== "POST" || action === null || !ACTIONS.has(action)) {
    return fail(request, "not_found", "Not Found", `${request.method} ${url.pathname} is not a route of this agent`);
  }
  const body = await readJsonBody(request, true);
  if (body instanceof ApiError) return errorResponse(request, body.toBody());
  const userId = resolveUserId(body.userId, identity);
  if (userId instanceof ApiError) return errorResponse(request, userId.toBody());
  if (!CONVERSATION_ID.test(id)) return errorResponse(request, (conversationIdOf(id) as ApiError).toBody());
  const object = conversationOf(env, userId);
  const answer = async (outcome: Promise<{ ok: true; conversation: unknown } | Failure>): Promise<Response> => {
    const result = await outcome;
    if (isFailure(result)) return errorResponse(request, result.error);
    return json(request, { ok: true, conversation: result.conversation });
  };
  switch (action) {
    case "rename": {
      const title = body.title;
      if (typeof title !== "string" || title.length > MAX_TITLE_INPUT) {
        return fail(request, "bad_request", "The request needs a \"title\" string.", `at most ${MAX_TITLE_INPUT} characters`);
      }
      return answer(object.renameConversation(userId, id, title));
    }
    case "archive":
      return answer(object.archiveConversation(userId, id));
    case "restore":
      return answer(object.restoreConversation(userId, id));
    case "delete": {
      if (body.purge !== undefined && typeof body.purge !== "boolean") return fail(request, "bad_request", "purge must be true or false.");
      const result = await object.deleteConversation(userId, id, body.purge === true);
      if (isFailure(result)) return errorResponse(request, result.error);
      return json(request, result.purged ? { ok: true, purged: id } : { ok: true, conversation: result.conversation });
    }
    case "switch": {
      const messageId = messageIdOf(body.messageId, true);
      if (messageId instanceof ApiError) return errorResponse(request, messageId.toBody());
      return answer(object.switchBranch(userId, id, messageId!));
    }
    case "edit": {
      const message = body.message;
      if (typeof message !== "string" || message.trim() === "") {
        return fail(request, "bad_request", "The request needs a non-empty \"message\" string.");
      }
      const messageId = messageIdOf(body.messageId, false);
      if (messageId instanceof ApiError) return errorResponse(request, messageId.toBody());
      const turn: TurnRequest = { kind: "edit", conversationId: id, message };
      if (messageId !== undefined) turn.messageId = messageId;
      return runTurn(request, env, ctx, userId, turn);
    }
    case "regenerate": {
      const messageId = messageIdOf(body.messageId, false);
      if (messageId instanceof ApiError) return errorResponse(request, messageId.toBody());
      const turn: TurnRequest = { kind: "regenerate", conversationId: id };
      if (messageId !== undefined) turn.messageId = messageId;
      return runTurn(request, env, ctx, userId, turn);
    }
    default:
      return runTurn(request, env, ctx, userId, { kind: "continue", conversationId: id });
  }
}

/** `GET /api/search?q=…[&limit=N]`: messages of every conversation, newest first. */
async function handleSearch(request: Request, env: Env, url: URL, identity: Identity): Promise<Response> {
  const userId = resolveUserId(url.searchParams.get("userId"), identity);
  if (userId instanceof ApiError) return errorResponse(request, userId.toBody());
  const q = url.searchParams.get("q") ?? "";
  if (q.length > MAX_QUERY_CHARS) return fail(request, "bad_request", `q is longer than ${MAX_QUERY_CHARS} characters.`);
  if (queryTerms(q).length === 0) return fail(request, "bad_request", "The request needs a \"q\" with at least one word.");
  let limit = SEARCH_LIMIT_DEFAULT;
  const rawLimit = url.searchParams.get("limit");
  if (rawLimit !== null) {
    limit = Number(rawLimit);
    if (!/^\d+$/.test(rawLimit) || limit < 1 || limit > SEARCH_LIMIT_MAX) {
      return fail(request, "bad_request", `limit must be a whole number from 1 to ${SEARCH_LIMIT_MAX}.`);
    }
  }
  const outcome = await conversationOf(env, userId).search(userId, q, limit);
  if (isFailure(outcome)) return errorResponse(request, outcome.error);
  return json(request, { query: q, engine: outcome.engine, results: outcome.results });
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
  if (method === "GET" && pathname === "/api/conversations") return handleList(request, env, url, identity);
  if (method === "POST" && pathname === "/api/conversations") return handleCreate(request, env, identity);
  if (method === "GET" && pathname === "/api/search") return handleSearch(request, env, url, identity);
  const named = pathname === null ? null : /^\/api\/conversations\/([^/]+)(?:\/([^/]+))?$/.exec(pathname);
  if (named) return handleConversation(request, env, ctx, url, identity, named[1]!, named[2] ?? null);
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
