/**
 * Reading a request body under a cap, counted while it arrives.
 *
 * `request.text()` buffers the whole body before anything can look at its size: a 200 MB chunked body
 * took workerd to 521 MB, and a production isolate has 128 MB. Here the body is read as a stream and
 * the bytes are counted as they come; past the cap the rest is never read (the stream is cancelled)
 * and the caller answers 413 `request_too_large`. A Content-Length over the cap is refused before a
 * byte is read; one under it is not trusted, since the count is what decides.
 */

import { ApiError } from "./errors";

function tooLarge(max: number, what: string): ApiError {
  return new ApiError("request_too_large", "The request is too large.", `${what}; at most ${max} bytes`);
}

/** The body's bytes, or a `request_too_large` ApiError as soon as more than `max` bytes have arrived. */
export async function readCapped(request: Request, max: number): Promise<Uint8Array | ApiError> {
  const declared = (request.headers.get("Content-Length") ?? "").trim();
  if (/^\d+$/.test(declared) && Number(declared) > max) return tooLarge(max, `${declared} bytes declared`);
  const body = request.body;
  if (body === null) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > max) {
        // Stop the upload here: nothing more of it is read or kept.
        await reader.cancel().catch(() => undefined);
        return tooLarge(max, `more than ${max} bytes sent`);
      }
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  if (chunks.length === 1) return chunks[0]!;
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/** The body as text, or a `bad_request` ApiError when it is not UTF-8 (JSON must be, RFC 8259). */
export function decodeUtf8(bytes: Uint8Array): string | ApiError {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return new ApiError("bad_request", "The request body is not valid UTF-8.");
  }
}
