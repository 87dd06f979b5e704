"""Reading a server's body: decoded here, counted after decoding, never more than a cap in memory.

httpx would decode ``Content-Encoding`` itself, but a whole network chunk at a time and without a
limit: a 1.8 KB body of stacked gzip becomes gigabytes in one call. So bodies are read raw
(``aiter_raw``) and decoded here, each layer asked for at most :data:`PIECE` bytes at a time, so
what is held never grows past a few pieces whatever the server declares. gzip (also ``x-gzip``)
and deflate (zlib-wrapped or raw) are read, stacked in any order; ``identity`` is no encoding. An
encoding edgechat does not read is a :class:`httpx.DecodingError` (the request said which it
accepts: :data:`ACCEPT_ENCODING`), as is a body that does not decode.

Every read of a server body goes through :func:`iter_body` (streams) or :func:`read_capped`
(whole bodies). Network failures are raised as httpx raises them, for the one error map
(:mod:`edgechat_tui.http.transport`) to type.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import AsyncIterator

import httpx

from edgechat_tui.http.deadline import Deadline

#: What the clients ask for; anything else declared by a server is refused.
ACCEPT_ENCODING = "gzip, deflate"
#: The most decoded bytes produced at a time.
PIECE = 64 * 1024


class _Layer:
    """One content coding being undone, asked for output a bounded piece at a time."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        self._input = b""
        self._raw_deflate = False
        # deflate: the first bytes, kept until the zlib wrapper is confirmed (raw deflate is tried
        # on them if it is not); None once settled.
        self._head: bytes | None = b"" if coding == "deflate" else None
        self._full = False  # the last pull filled its limit: zlib may hold more output, input or not
        self._z = self._new()

    def _new(self) -> zlib._Decompress:
        if self.coding == "gzip":
            return zlib.decompressobj(zlib.MAX_WBITS | 16)
        return zlib.decompressobj(-zlib.MAX_WBITS if self._raw_deflate else zlib.MAX_WBITS)

    def feed(self, data: bytes) -> None:
        self._input = data

    @property
    def hungry(self) -> bool:
        return not self._input and not self._full

    def pull(self, n: int) -> bytes:
        data, self._input = self._input, b""
        if self._head is not None:
            self._head += data
        try:
            out = self._z.decompress(data, n)
        except zlib.error as exc:
            if self._head is None or self._raw_deflate:
                raise httpx.DecodingError(f"the {self.coding} body does not decode ({exc})") from None
            # Many servers send raw deflate under the name "deflate": try that, from the first byte.
            self._raw_deflate = True
            self._z = self._new()
            data, self._head = self._head, None
            try:
                out = self._z.decompress(data, n)
            except zlib.error as exc2:
                raise httpx.DecodingError(f"the deflate body does not decode ({exc2})") from None
        if self._head is not None and (out or len(self._head) > 64):
            self._head = None  # the wrapper is good (zlib checks it in the first two bytes)
        self._full = len(out) >= n
        self._input = self._z.unconsumed_tail
        if self._z.eof:
            # At the end of a stream what follows is in unused_data (unconsumed_tail may repeat it).
            self._input = self._z.unused_data if self.coding == "gzip" else b""
            if self._input:  # a second gzip member follows
                self._z = self._new()
            # after the end of a deflate stream anything more is ignored, as zlib does
        return out


def _layers(response: httpx.Response) -> list[_Layer]:
    """The codings to undo, in the order to undo them (the last applied first)."""
    declared = response.headers.get_list("content-encoding", split_commas=True)
    layers: list[_Layer] = []
    for value in reversed(declared):
        coding = value.strip().lower()
        if coding in ("", "identity"):
            continue
        if coding in ("gzip", "x-gzip"):
            layers.append(_Layer("gzip"))
        elif coding == "deflate":
            layers.append(_Layer("deflate"))
        else:
            shown = "".join(ch for ch in coding[:40] if ch.isalnum() or ch in "-_.")
            raise httpx.DecodingError(f"the body is in an encoding edgechat does not read ({shown or '?'})")
    return layers


def _produce(layers: list[_Layer], k: int, n: int) -> bytes:
    """Up to ``n`` decoded bytes out of layer ``k``, pulling from the layers before it as needed."""
    layer = layers[k]
    while True:
        if not layer.hungry:
            out = layer.pull(n)
            if out:
                return out
            continue
        if k == 0:
            return b""
        upstream = _produce(layers, k - 1, PIECE)
        if not upstream:
            return b""
        layer.feed(upstream)


async def iter_body(response: httpx.Response, *, deadline: Deadline | None = None) -> AsyncIterator[bytes]:
    """The decoded body in pieces of at most PIECE bytes (a raw piece may be a little larger)."""
    layers = _layers(response)
    raw = response.aiter_raw()
    try:
        if not layers and deadline is None:
            async for chunk in raw:  # the common case, without an encoding: kept cheap
                yield chunk
            return
        while True:
            if layers:
                out = _produce(layers, len(layers) - 1, PIECE)
                if out:
                    yield out
                    continue
            if deadline is not None:
                chunk = await deadline.run(anext(raw, None))
            else:
                chunk = await anext(raw, None)
            if chunk is None:
                return
            if not chunk:
                continue
            if layers:
                layers[0].feed(chunk)
            else:
                yield chunk
    finally:
        await raw.aclose()


async def read_capped(response: httpx.Response, cap: int, *,
                      deadline: Deadline | None = None) -> tuple[bytes, bool]:
    """At most ``cap`` decoded bytes of the body, and whether that was all of it.

    Stops reading (and holding) as soon as the cap is passed; the caller closes the response.
    """
    buffer = bytearray()
    async with contextlib.aclosing(iter_body(response, deadline=deadline)) as pieces:
        async for piece in pieces:
            buffer += piece
            if len(buffer) > cap:
                del buffer[cap:]
                return bytes(buffer), False
    return bytes(buffer), True


__all__ = ["ACCEPT_ENCODING", "PIECE", "iter_body", "read_capped"]
