// Mints a per-user token for identity mode `user-tokens` (docs/worker.md), signed with the same
// secret the Worker has, read from the environment:
//
//   EDGECHAT_SIGNING_KEY=... npm run mint-token -- --user alice --days 90
//
// Prints a line saying whom the token is for and when it expires (on stderr), then the token alone on
// the last line of stdout, so `TOKEN=$(npm run -s mint-token -- --user alice)` captures just it. The
// signing is src/tokens.ts itself, bundled on the fly, so the script and the Worker cannot disagree.

import { parseArgs } from "node:util";
import { join } from "node:path";
import { build } from "esbuild";
import { WORKER_DIR } from "./build.mjs";

function usage(problem) {
  process.stderr.write(`mint-token: ${problem}\nusage: EDGECHAT_SIGNING_KEY=... npm run mint-token -- --user <id> [--days N]\n`);
  process.exit(2);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      user: { type: "string" },
      days: { type: "string", default: "90" },
    },
  }));
} catch (err) {
  usage(err.message);
}
if (!values.user) usage("--user is required");
const days = Number(values.days);
if (!Number.isFinite(days) || days <= 0 || days > 3650) usage("--days must be a number above 0 and at most 3650");
const secret = process.env.EDGECHAT_SIGNING_KEY;
if (secret === undefined) usage("set EDGECHAT_SIGNING_KEY in the environment (the Worker's secret of the same name)");

const bundled = await build({
  entryPoints: [join(WORKER_DIR, "src", "tokens.ts")],
  bundle: true,
  format: "esm",
  platform: "neutral",
  target: "es2022",
  write: false,
  logLevel: "silent",
});
const tokens = await import(`data:text/javascript;base64,${Buffer.from(bundled.outputFiles[0].text).toString("base64")}`);

const problem = tokens.signingKeyProblem(secret);
if (problem) usage(`EDGECHAT_SIGNING_KEY cannot be used: ${problem}`);
const idProblem = tokens.userIdProblem?.(values.user) ?? null;
if (idProblem) usage(`invalid user id: ${idProblem}`);

const iat = Date.now();
const exp = iat + Math.round(days * 86_400_000);
let token;
try {
  token = await tokens.mintToken(secret, { sub: values.user, iat, exp });
} catch (err) {
  usage(err.message);
}
process.stderr.write(`token for ${values.user}, issued ${new Date(iat).toISOString()}, expires ${new Date(exp).toISOString()}\n`);
process.stdout.write(`${token}\n`);
