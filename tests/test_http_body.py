"""The one body reader: every declared encoding decoded exactly, whatever the chunking, and capped."""

from __future__ import annotations

import gzip
import random
import zlib

import httpx
import pytest

from edgechat_tui.http.body import PIECE, iter_body, read_capped


def _raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


ENCODERS = {
    "identity": lambda d: d,
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,
    "deflate": zlib.compress,
    "deflate-raw": _raw_deflate,
    "gzip, gzip": lambda d: gzip.compress(gzip.compress(d)),
    "deflate, gzip": lambda d: gzip.compress(zlib.compress(d)),
    "gzip-two-members": lambda d: gzip.compress(d[: len(d) // 2]) + gzip.compress(d[len(d) // 2:]),
}


def _response(coding: str, body: bytes, chunk: int) -> httpx.Response:
    declared = {"deflate-raw": "deflate", "gzip-two-members": "gzip"}.get(coding, coding)

    class Chunks(httpx.AsyncByteStream):
        async def __aiter__(self):
            for start in range(0, len(body), chunk):
                yield body[start:start + chunk]

    return httpx.Response(200, headers={"content-encoding": declared}, stream=Chunks())


def _data(seed: int) -> bytes:
    rng = random.Random(seed)
    # incompressible and very compressible stretches, so zlib both fills and starves its output limit
    parts = [rng.randbytes(rng.randrange(1, 70_000)) if rng.random() < 0.5
             else b"a" * rng.randrange(1, 3 * PIECE) for _ in range(8)]
    return b"".join(parts)


@pytest.mark.parametrize("coding", list(ENCODERS))
@pytest.mark.parametrize("chunk", [1, 333, 65_536])
async def test_every_encoding_round_trips_in_any_chunking(coding: str, chunk: int) -> None:
    for seed in range(3 if chunk > 1 else 1):
        data = _data(seed)[: 20_000 if chunk == 1 else None]
        pieces = [p async for p in iter_body(_response(coding, ENCODERS[coding](data), chunk))]
        assert b"".join(pieces) == data
        assert all(len(p) <= max(PIECE, chunk) for p in pieces)
        body, complete = await read_capped(_response(coding, ENCODERS[coding](data), chunk), len(data))
        assert complete and body == data
        body, complete = await read_capped(_response(coding, ENCODERS[coding](data), chunk), len(data) - 1)
        assert not complete and body == data[:-1]


@pytest.mark.parametrize("coding", ["br", "zstd", "compress"])
async def test_an_encoding_not_read_is_a_decoding_error(coding: str) -> None:
    with pytest.raises(httpx.DecodingError, match=coding):
        await read_capped(_response(coding, b"abc", 3), 100)


async def test_a_body_that_does_not_decode_is_a_decoding_error() -> None:
    with pytest.raises(httpx.DecodingError):
        await read_capped(_response("gzip", b"this is not gzip at all", 5), 100)
