// Which route a request's path names.

/**
 * The path to route on: repeated slashes collapsed ("https://host/" + "/api/chat" is a common way to
 * build a URL), a trailing slash dropped, and BASE_PATH taken off when the agent is served under a
 * prefix (a route such as example.com/team/*, used as `--remote https://example.com/team`). A path
 * outside the prefix gets null, and a 404.
 */
export function routePath(rawPath: string, basePath: string | undefined): string | null {
  const path = rawPath.replace(/\/{2,}/g, "/").replace(/(.)\/$/, "$1");
  const base = (basePath ?? "").replace(/\/{2,}/g, "/").replace(/\/+$/, "");
  if (base === "" || base === "/") return path;
  const prefix = base.startsWith("/") ? base : `/${base}`;
  if (path === prefix) return "/";
  return path.startsWith(`${prefix}/`) ? path.slice(prefix.length) : null;
}
