/**
 * User ids, checked with the same rules as the Python client (src/edgechat_tui/userid.py), so an id
 * edgechat accepts is one the agent accepts and the other way round.
 */

const VALID = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$/;
const DEVICE_NAMES = new Set([
  "con",
  "prn",
  "aux",
  "nul",
  ...Array.from({ length: 10 }, (_, i) => `com${i}`),
  ...Array.from({ length: 10 }, (_, i) => `lpt${i}`),
]);

/** The id a seed client gets when it sends none. */
export const DEFAULT_USER_ID = "default-user";
export const USER_ID_RULES = "1 to 64 characters of A-Z a-z 0-9 . _ -, not starting with a dot";

/** Returns the reason `userId` is not acceptable, or null when it is. */
export function userIdProblem(userId: string): string | null {
  if (userId === "") return "it is empty";
  if (!VALID.test(userId)) {
    if (userId.length > 64) return `it is ${userId.length} characters long`;
    if (userId.startsWith(".")) return "it starts with a dot";
    return "it contains a character outside A-Z a-z 0-9 . _ -";
  }
  if (userId.includes("..")) return "it contains '..'";
  // Windows reserves these names with any extension ("nul.txt" names the null device too).
  const stem = userId.split(".", 1)[0]!.toLowerCase();
  if (DEVICE_NAMES.has(stem)) return "it is a device name on Windows";
  return null;
}
