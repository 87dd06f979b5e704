// Serves the agent on a loopback port with the Workers AI stub, for the Python end-to-end test and
// for trying a client by hand without a Cloudflare account.
//
//   node scripts/serve-test.mjs [--port N] [--host 127.0.0.1] [--token T] [--persist DIR] [--var NAME=VALUE]...
//
// Prints one line, `{"url": "http://127.0.0.1:PORT/"}`, once it is listening, and runs until stdin
// closes or it gets SIGINT/SIGTERM. The token may also come from EDGECHAT_TOKEN in the environment.
// `--var` sets any other var or secret, e.g. `--var EDGECHAT_SIGNING_KEY=...` for per-user tokens or
// `--var USER_TURNS_PER_MINUTE=5`.

import { parseArgs } from "node:util";
import { startAgent } from "./harness.mjs";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "0" },
    host: { type: "string", default: "127.0.0.1" },
    token: { type: "string" },
    persist: { type: "string" },
    var: { type: "string", multiple: true, default: [] },
  },
});
const vars = {};
for (const pair of values.var) {
  const eq = pair.indexOf("=");
  if (eq <= 0) {
    process.stderr.write(`serve-test: --var wants NAME=VALUE, not ${JSON.stringify(pair)}\n`);
    process.exit(2);
  }
  vars[pair.slice(0, eq)] = pair.slice(eq + 1);
}
const token = values.token ?? process.env.EDGECHAT_TOKEN ?? undefined;
const agent = await startAgent({
  host: values.host,
  port: Number(values.port),
  token: token || undefined,
  persist: values.persist,
  vars,
});
process.stdout.write(`${JSON.stringify({ url: agent.url.href })}\n`);

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await agent.dispose();
  process.exit(0);
}
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
process.stdin.on("end", stop);
process.stdin.on("close", stop);
process.stdin.resume();
