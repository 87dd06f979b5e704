/**
 * Bearer-token comparison. When the EDGECHAT_TOKEN secret is set, every route but the health check
 * needs `Authorization: Bearer <token>`; without it, anyone who knows a user id could read and write
 * that user's conversation (the seed's defect 5). identity.ts chooses the mode; the admin token
 * (EDGECHAT_ADMIN_TOKEN) is compared the same way.
 */

const encoder = new TextEncoder();

async function digest(text: string): Promise<ArrayBuffer> {
  return crypto.subtle.digest("SHA-256", encoder.encode(text));
}

/** A configured token, trimmed, or null when it is unset or blank (identity.ts refuses blank ones). */
export function configuredToken(secret: string | undefined): string | null {
  const token = secret?.trim();
  return token ? token : null;
}

/**
 * Whether the request carries the expected token. Both sides are hashed first, so the comparison
 * takes the same time whatever the token's length, and `timingSafeEqual` compares in constant time.
 */
export async function isAuthorized(request: Request, expected: string): Promise<boolean> {
  const header = request.headers.get("Authorization") ?? "";
  const match = /^Bearer[ \t]+(.+)$/i.exec(header.trim());
  const presented = match ? match[1]!.trim() : "";
  const [a, b] = await Promise.all([digest(presented), digest(expected)]);
  return crypto.subtle.timingSafeEqual(a, b) && presented !== "" && expected !== "";
}
