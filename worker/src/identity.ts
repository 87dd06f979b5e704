/**
 * Who is asking. The Worker runs in one of four identity modes, chosen by its configuration and
 * announced in the health answer (docs/protocol.md, "Identity"):
 *
 *   none         nothing set: the client names the user (the seed's behaviour)
 *   token        EDGECHAT_TOKEN: one shared bearer token; the client still names the user
 *   user-tokens  EDGECHAT_SIGNING_KEY: signed per-user tokens (tokens.ts); the user is the token's
 *   access       ACCESS_TEAM_DOMAIN + ACCESS_AUD: Cloudflare Access JWTs (access.ts); the user is the JWT's
 *
 * Configuration fails closed: a secret that is set but empty or only whitespace, a short signing key,
 * two modes at once, half an Access configuration or a limit that is not a number make the Worker
 * refuse every request (health included) with 500 `misconfigured`, naming the variable, never its value.
 */

import { configuredToken, isAuthorized } from "./auth";
import { parseTeamDomain, verifyAccessJwt, DEFAULT_REFETCH_FLOOR_MS, type AccessConfig } from "./access";
import { ApiError } from "./errors";
import { readLimits, type LimitVars, type Limits } from "./limits";
import { signingKeyProblem, verifyToken } from "./tokens";
import { DEFAULT_USER_ID, USER_ID_RULES, userIdProblem } from "./userid";

export type AuthMode = "none" | "token" | "user-tokens" | "access";

export interface IdentityVars extends LimitVars {
  EDGECHAT_TOKEN?: string;
  EDGECHAT_SIGNING_KEY?: string;
  EDGECHAT_ADMIN_TOKEN?: string;
  ACCESS_TEAM_DOMAIN?: string;
  ACCESS_AUD?: string;
  ACCESS_CERTS_MIN_REFETCH_SECONDS?: string | number;
}

export interface ServiceConfig {
  mode: AuthMode;
  sharedToken: string | null;
  signingKey: string | null;
  adminToken: string | null;
  access: AccessConfig | null;
  limits: Limits;
}

export interface Misconfigured {
  problems: string[];
}

/** A secret's value: undefined when unset; a problem when set but blank. */
function secretVar(name: string, value: string | undefined, problems: string[]): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== "string" || value.trim() === "") {
    problems.push(`${name} is set but empty or only whitespace (unset it, or give it a value)`);
    return null;
  }
  return value;
}

/** Reads and checks the identity and limit configuration; any problem makes the whole Worker refuse. */
export function readServiceConfig(env: IdentityVars): ServiceConfig | Misconfigured {
  const problems: string[] = [];
  const sharedToken = secretVar("EDGECHAT_TOKEN", env.EDGECHAT_TOKEN, problems);
  const signingKey = secretVar("EDGECHAT_SIGNING_KEY", env.EDGECHAT_SIGNING_KEY, problems);
  const adminToken = secretVar("EDGECHAT_ADMIN_TOKEN", env.EDGECHAT_ADMIN_TOKEN, problems);
  const teamDomain = secretVar("ACCESS_TEAM_DOMAIN", env.ACCESS_TEAM_DOMAIN, problems);
  const audience = secretVar("ACCESS_AUD", env.ACCESS_AUD, problems);

  const chosen: AuthMode[] = [];
  if (env.EDGECHAT_TOKEN !== undefined) chosen.push("token");
  if (env.EDGECHAT_SIGNING_KEY !== undefined) chosen.push("user-tokens");
  if (env.ACCESS_TEAM_DOMAIN !== undefined || env.ACCESS_AUD !== undefined) chosen.push("access");
  if (chosen.length > 1) {
    problems.push(`more than one identity mode is configured (${chosen.join(", ")}): set only one of EDGECHAT_TOKEN, EDGECHAT_SIGNING_KEY, or ACCESS_TEAM_DOMAIN with ACCESS_AUD`);
  }
  const mode: AuthMode = chosen[0] ?? "none";

  if (signingKey !== null) {
    const problem = signingKeyProblem(signingKey);
    if (problem) problems.push(`EDGECHAT_SIGNING_KEY cannot be used: ${problem}`);
  }
  let access: AccessConfig | null = null;
  if (mode === "access") {
    if (env.ACCESS_TEAM_DOMAIN === undefined) problems.push("ACCESS_AUD is set but ACCESS_TEAM_DOMAIN is not");
    if (env.ACCESS_AUD === undefined) problems.push("ACCESS_TEAM_DOMAIN is set but ACCESS_AUD is not");
    let refetchFloorMs = DEFAULT_REFETCH_FLOOR_MS;
    const floor = env.ACCESS_CERTS_MIN_REFETCH_SECONDS;
    if (floor !== undefined) {
      const seconds = Number(typeof floor === "string" ? floor.trim() : floor);
      if (!Number.isFinite(seconds) || seconds < 1 || seconds > 3600 || String(floor).trim() === "") {
        problems.push("ACCESS_CERTS_MIN_REFETCH_SECONDS must be a number from 1 to 3600");
      } else refetchFloorMs = seconds * 1000;
    }
    if (teamDomain !== null && audience !== null) {
      const parsed = parseTeamDomain(teamDomain);
      if ("problem" in parsed) problems.push(`ACCESS_TEAM_DOMAIN cannot be used: ${parsed.problem}`);
      else access = { origin: parsed.origin, audience: audience.trim(), refetchFloorMs };
    }
  }
  const { limits, problems: limitProblems } = readLimits(env);
  problems.push(...limitProblems);
  if (problems.length > 0) return { problems };
  return {
    mode,
    sharedToken: configuredToken(sharedToken ?? undefined),
    signingKey: signingKey?.trim() ?? null,
    adminToken: configuredToken(adminToken ?? undefined),
    access,
    limits,
  };
}

export function isMisconfigured(config: ServiceConfig | Misconfigured): config is Misconfigured {
  return "problems" in config;
}

/** Who a request comes from, once its credential is verified. */
export interface Identity {
  mode: AuthMode;
  /** The verified user id; null when the mode lets the client name the user (none, token). */
  userId: string | null;
  /** When the credential expires (ms), for whoami. */
  expiresAtMs?: number;
  /** user-tokens: when the token was issued, checked against the user's revocation time. */
  issuedAtMs?: number;
  /** access: the identity the user id was derived from, bound to the user's object. */
  principal?: string;
}

/** The bearer token of a request, or "" when it has none. */
export function bearerOf(request: Request): string {
  const header = request.headers.get("Authorization") ?? "";
  const match = /^Bearer[ \t]+(.+)$/i.exec(header.trim());
  return match ? match[1]!.trim() : "";
}

function unauthorized(message: string, details: string): ApiError {
  return new ApiError("unauthorized", message, details);
}

/** Verifies the request's credential for the configured mode. The credential never appears in an error. */
export async function authenticate(request: Request, config: ServiceConfig, nowMs: number): Promise<Identity | ApiError> {
  switch (config.mode) {
    case "none":
      return { mode: "none", userId: null };
    case "token":
      if (!(await isAuthorized(request, config.sharedToken!))) {
        return unauthorized("A valid bearer token is required.", "send Authorization: Bearer <token>");
      }
      return { mode: "token", userId: null };
    case "user-tokens": {
      const presented = bearerOf(request);
      if (presented === "") return unauthorized("A valid bearer token is required.", "send Authorization: Bearer <your edgechat user token>");
      const check = await verifyToken(config.signingKey!, presented, nowMs);
      if (!check.ok) return unauthorized("The token was refused.", check.reason);
      return { mode: "user-tokens", userId: check.claims.sub, issuedAtMs: check.claims.iat, expiresAtMs: check.claims.exp };
    }
    case "access": {
      const jwt = (request.headers.get("Cf-Access-Jwt-Assertion") ?? "").trim();
      if (jwt === "") {
        return unauthorized("This agent is behind Cloudflare Access: sign in through it.", "no Cf-Access-Jwt-Assertion header");
      }
      const check = await verifyAccessJwt(config.access!, jwt, nowMs);
      if (!check.ok) {
        if (check.unavailable) return new ApiError("unavailable", "Cloudflare Access's keys could not be fetched; try again shortly.", check.reason, 5);
        return unauthorized("The Cloudflare Access token was refused.", check.reason);
      }
      const { userId, principal, expiresAtMs } = check.identity;
      return { mode: "access", userId, principal, expiresAtMs };
    }
  }
}

/** Whether the request carries the admin token (compared in constant time). */
export async function isAdmin(request: Request, config: ServiceConfig): Promise<boolean> {
  return config.adminToken !== null && (await isAuthorized(request, config.adminToken));
}

/**
 * The user a request acts for. When the mode lets the client name the user, its `userId` (missing or
 * empty: the seed's "default-user"). Otherwise the verified user: a missing or empty `userId` means
 * that user, and naming anyone else is 403 `forbidden`.
 */
export function scopedUserId(identity: Identity, raw: unknown): string | ApiError {
  if (raw !== undefined && raw !== null && typeof raw !== "string") {
    return new ApiError("bad_request", "userId must be a string.", `use ${USER_ID_RULES}`);
  }
  if (identity.userId !== null) {
    if (raw === undefined || raw === null || raw === "" || raw === identity.userId) return identity.userId;
    return new ApiError(
      "forbidden",
      "Your credential is for another user id.",
      `it is for ${identity.userId}; send that userId, or none`,
    );
  }
  if (raw === undefined || raw === null || raw === "") return DEFAULT_USER_ID;
  const problem = userIdProblem(raw);
  if (problem) return new ApiError("bad_request", `Invalid user id: ${problem}.`, `use ${USER_ID_RULES}`);
  return raw;
}
