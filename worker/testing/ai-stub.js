// A stand-in for the Workers AI binding (`env.AI`), for tests: Workers AI cannot run offline.
//
// It is loaded by miniflare as a *wrapped binding*: workerd calls the default export with its inner
// bindings and the Worker gets the returned object as `env.AI`, so the Worker's own code path is the
// one it runs in production. It answers as the real binding does (docs: ../../shared/reference/cloudflare.md
// sections 1.3-1.5): a `{response, usage}` object, or with `stream: true` a ReadableStream of
// `data: {...}\n\n` events ending in `data: [DONE]`; failures are thrown as an Error whose message is
// "<code>: <text>"; a request whose estimated input plus max_tokens passes the window is refused with
// 5021. Its tokenizer is not the real one either: it counts one token per four UTF-8 bytes.
//
// The reply is computed from what it was sent, so tests can see what the model saw:
//   You said "<last user message>". I remember N earlier messages from you; the first was "<…>".
// Tests steer it with directives in the last user message:
//   [[error CODE]]   throw that Workers AI error      [[delay MS]]   wait before answering
//   [[words N]]      answer with N words (cut at max_tokens, as the model cuts)
//   [[slow MS]]      wait between streamed pieces     [[stream-error]]  fail after two pieces
//   [[dense]]        count one token per two bytes (a tokenizer less kind than the Worker's estimate)
// and, to misbehave as a broken stream would (each after the second piece unless said otherwise):
//   [[no-done]]      end the stream cleanly without its final `data: [DONE]`
//   [[cut N]]        end the stream cleanly after N events: the reply cut short, no usage, no [DONE]
//   [[garbage]]      send a `data:` line that is not JSON      [[bad-utf8]]  send a byte that is not UTF-8
//   [[not-text]]     send a piece whose `response` is an object, not text
//   [[error-event CODE]]  send `data: {"errors":[{"code":CODE,"message":…}]}`, as the service does mid-stream
//   [[empty-errors]] (harmless) put `"errors": []` in every event
// Inner bindings: MODELS (JSON {model id: context window}); RECORD (optional service) receives each
// request as JSON before it is answered, and may answer {"error": CODE} to make it fail with that code.

const ERROR_TEXTS = {
  3040: "Capacity temporarily exceeded, please try again.",
  3036: "You have used up your daily free allocation of 10,000 neurons, please upgrade to Cloudflare's Workers Paid plan if you would like to continue usage.",
  4006: "you have used up your daily free allocation of 10,000 neurons, please upgrade to Cloudflare's Workers Paid plan if you would like to continue usage.",
  3007: "Request timeout",
  5007: "No such model or task",
  5006: "Bad input: Error: oneOf at '/' not met, 0 matches required",
  10000: "Authentication error",
};
const DEFAULT_MAX_TOKENS = 256;
const encoder = new TextEncoder();

function bytes(text) {
  return encoder.encode(text).length;
}

function aiError(code, text) {
  const err = new Error(`${code}: ${text ?? ERROR_TEXTS[code] ?? "Unknown error"}`);
  err.name = "AiError";
  return err;
}

function directive(text, name) {
  const m = new RegExp(`\\[\\[${name}(?:\\s+(\\d+))?\\]\\]`).exec(text);
  if (!m) return null;
  return m[1] === undefined ? true : Number(m[1]);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function validate(inputs) {
  if (!inputs || !Array.isArray(inputs.messages) || inputs.messages.length === 0) {
    throw aiError(5006, "Bad input: Error: required properties at '/' are 'messages'");
  }
  for (const m of inputs.messages) {
    if (!m || typeof m.content !== "string" || !["system", "user", "assistant", "tool"].includes(m.role)) {
      throw aiError(5006, "Bad input: Error: oneOf at '/' not met, 0 matches required");
    }
  }
}

function replyText(messages, words, maxTokens) {
  const users = messages.filter((m) => m.role === "user");
  const last = users[users.length - 1].content;
  const earlier = users.slice(0, -1);
  let text;
  if (words !== null) {
    text = Array.from({ length: words }, (_, i) => `w${i}`).join(" ");
  } else {
    const quoted = last.length > 200 ? `${last.slice(0, 200)}…` : last;
    const memory =
      earlier.length === 0
        ? "This is the first message I have from you."
        : `I remember ${earlier.length} earlier messages from you; the first was "${earlier[0].content.slice(0, 200)}".`;
    text = `You said "${quoted}". ${memory}`;
  }
  // The model stops at max_tokens; one word stands for one token here.
  const pieces = text.split(" ");
  return pieces.length > maxTokens ? pieces.slice(0, maxTokens).join(" ") : text;
}

function streamOf(text, usage, { slowMs, failAfter, misbehave }) {
  const words = text.split(/(?<= )/);
  // Events are cut into chunks at odd places, as a network delivers them, to keep parsers honest.
  const extra = misbehave.emptyErrors ? { errors: [] } : {};
  const events = words.map((w) =>
    encoder.encode(`data: ${JSON.stringify({ response: w, p: "abcdefghij".slice(0, (w.length % 7) + 1), ...extra })}\n\n`),
  );
  const at = Math.min(2, events.length);
  if (misbehave.garbage) events.splice(at, 0, encoder.encode('data: {"response": "half an event\n\n'));
  if (misbehave.notText) events.splice(at, 0, encoder.encode(`data: ${JSON.stringify({ response: { text: "x" } })}\n\n`));
  if (misbehave.badUtf8) events.splice(at, 0, new Uint8Array([...encoder.encode('data: {"response": "caf'), 0xff, ...encoder.encode('"}\n\n')]));
  if (misbehave.errorEvent !== null) {
    const error = { code: misbehave.errorEvent, message: ERROR_TEXTS[misbehave.errorEvent] ?? "Unknown error" };
    events.splice(at, 0, encoder.encode(`data: ${JSON.stringify({ errors: [error] })}\n\n`));
  }
  events.push(encoder.encode(`data: ${JSON.stringify({ response: "", usage, ...extra })}\n\n`));
  if (!misbehave.noDone) events.push(encoder.encode("data: [DONE]\n\n"));
  if (misbehave.cut !== null) events.length = Math.min(events.length, misbehave.cut);
  const wire = new Uint8Array(events.reduce((n, e) => n + e.length, 0));
  events.reduce((offset, e) => (wire.set(e, offset), offset + e.length), 0);
  let offset = 0;
  let sent = 0;
  return new ReadableStream({
    async pull(controller) {
      if (failAfter !== null && sent >= failAfter) {
        controller.error(aiError(3007));
        return;
      }
      if (offset >= wire.length) {
        controller.close();
        return;
      }
      if (slowMs) await sleep(slowMs);
      const size = 7 + ((offset * 13) % 41);
      controller.enqueue(wire.slice(offset, offset + size));
      offset += size;
      sent++;
    },
  });
}

export default function makeAiStub(env) {
  const windows = typeof env.MODELS === "string" ? JSON.parse(env.MODELS) : env.MODELS ?? {};
  return {
    async run(model, inputs, options) {
      if (env.RECORD) {
        // The recorder may also make this call fail: it answers {"error": CODE} to say so.
        const verdict = await env.RECORD.fetch("http://record/", { method: "POST", body: JSON.stringify({ model, inputs, options }) });
        if (verdict.status === 200) {
          const { error } = await verdict.json();
          if (error) throw aiError(error);
        }
      }
      const window = windows[model];
      if (window === undefined) throw aiError(5007, `No such model ${model} or task`);
      validate(inputs);
      const last = inputs.messages[inputs.messages.length - 1].content;
      const delay = directive(last, "delay");
      if (delay) await sleep(delay);
      const code = directive(last, "error");
      if (typeof code === "number") throw aiError(code);

      const bytesPerToken = directive(last, "dense") ? 2 : 4;
      const promptTokens = inputs.messages.reduce((n, m) => n + Math.ceil(bytes(m.content) / bytesPerToken) + 3, 0);
      const maxTokens = inputs.max_tokens ?? DEFAULT_MAX_TOKENS;
      if (promptTokens + maxTokens > window) {
        throw aiError(
          5021,
          `The estimated number of input and maximum output tokens (${promptTokens + maxTokens}) exceeded this model context window limit (${window}).`,
        );
      }
      const words = directive(last, "words");
      const text = replyText(inputs.messages, typeof words === "number" ? words : null, maxTokens);
      const usage = { prompt_tokens: promptTokens, completion_tokens: text.split(" ").length, total_tokens: 0 };
      usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
      if (inputs.stream) {
        const slow = directive(last, "slow");
        const cut = directive(last, "cut");
        const errorEvent = directive(last, "error-event");
        return streamOf(text, usage, {
          slowMs: typeof slow === "number" ? slow : 0,
          failAfter: directive(last, "stream-error") ? 2 : null,
          misbehave: {
            noDone: directive(last, "no-done") !== null,
            cut: typeof cut === "number" ? cut : null,
            garbage: directive(last, "garbage") !== null,
            badUtf8: directive(last, "bad-utf8") !== null,
            notText: directive(last, "not-text") !== null,
            errorEvent: typeof errorEvent === "number" ? errorEvent : null,
            emptyErrors: directive(last, "empty-errors") !== null,
          },
        });
      }
      return { response: text, usage };
    },
  };
}
