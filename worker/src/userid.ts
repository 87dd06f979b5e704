/**
 * User ids, checked with the same rules as the Python client (src/edgechat_tui/userid.py), so an id
 * edgechat accepts is one the agent accepts and the other way round. Both are held to the cases in
 * src/edgechat_tui/core/data/userid_cases.json (worker/test/units.test.mjs runs them here).
 */

const VALID = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$/;
/** The longest id, in characters (code points, as Python's `len` counts them). */
const MAX_LENGTH = 64;
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

/** The first rule an invalid id breaks, in the order they are checked (the `reason` of the shared cases). */
export type UserIdRule = "empty" | "too_long" | "leading_dot" | "bad_character" | "dot_dot" | "device_name";

function codePoints(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/** Which rule `userId` breaks, or null when it is acceptable. */
export function userIdRule(userId: string): UserIdRule | null {
  if (userId === "") return "empty";
  if (!VALID.test(userId)) {
    if (codePoints(userId) > MAX_LENGTH) return "too_long";
    if (userId.startsWith(".")) return "leading_dot";
    return "bad_character";
  }
  if (userId.includes("..")) return "dot_dot";
  // Windows reserves these names with any extension ("nul.txt" names the null device too).
  const stem = userId.split(".", 1)[0]!.toLowerCase();
  if (DEVICE_NAMES.has(stem)) return "device_name";
  return null;
}

/** Returns the reason `userId` is not acceptable, or null when it is. */
export function userIdProblem(userId: string): string | null {
  switch (userIdRule(userId)) {
    case null:
      return null;
    case "empty":
      return "it is empty";
    case "too_long":
      return `it is ${codePoints(userId)} characters long`;
    case "leading_dot":
      return "it starts with a dot";
    case "bad_character":
      return "it contains a character outside A-Z a-z 0-9 . _ -";
    case "dot_dot":
      return "it contains '..'";
    case "device_name":
      return "it is a device name on Windows";
  }
}
