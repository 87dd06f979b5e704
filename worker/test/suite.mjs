// Every Worker test in one process: loading Miniflare costs seconds, so `npm test` pays it once.
// Each file also runs alone: `node --test test/stream.test.mjs`.
import "./units.test.mjs";
import "./shared-data.test.mjs";
import "./contract.test.mjs";
import "./auth.test.mjs";
import "./errors.test.mjs";
import "./stream.test.mjs";
import "./context.test.mjs";
import "./concurrency.test.mjs";
import "./storage.test.mjs";
import "./identity.test.mjs";
import "./access.test.mjs";
import "./idempotency.test.mjs";
import "./limits.test.mjs";
import "./crossuser.test.mjs";
import "./identity-units.test.mjs";
import "./body.test.mjs";
import "./stream-end.test.mjs";
import "./history-pages.test.mjs";
