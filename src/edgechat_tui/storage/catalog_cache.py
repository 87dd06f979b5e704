"""The model catalog's cache: one small JSON file per account in the cache folder.

``models-<key>.json`` (``key`` a hash of the account and the API base: the catalog is an
account's, and the file names neither) holds ``{"schema": 1, "fetched_at": <unix time>,
"models": [...]}``, the models in the catalog's own item form (``core/catalog.py``). It is written
whole or not at all (temp file, fsync, rename), mode 0600, in a folder made 0700.

Reading never trusts it: a file that is missing, too large, not JSON, of another schema, or whose
models do not validate is reported as :class:`CacheProblem` with a reason, and the caller fetches
the catalog again (the cache is only a copy of what the service says: replacing a damaged one
loses nothing). Blocking: call it from a thread on an event loop.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from edgechat_tui.core.catalog import CatalogError, CatalogModel, models_from_json, models_to_json
from edgechat_tui.core.errors import StorageError
from edgechat_tui.storage.fs import durable_write, ensure_private_dir, open_regular

__all__ = ["CACHE_SCHEMA", "MAX_CACHE_BYTES", "CacheProblem", "CachedCatalog", "cache_path", "read_cache",
           "write_cache"]

CACHE_SCHEMA = 1
MAX_CACHE_BYTES = 4 * 1024 * 1024


class CacheProblem(Exception):
    """The cache cannot be used; ``str()`` says why, for a quiet line."""


@dataclass(frozen=True, slots=True)
class CachedCatalog:
    models: list[CatalogModel]
    fetched_at: float

    def age(self, now: float | None = None) -> float:
        """Seconds since the catalog was fetched (0 for a time in the future: a clock set back)."""
        return max(0.0, (time.time() if now is None else now) - self.fetched_at)


def cache_path(cache_dir: Path, account_id: str, api_base: str) -> Path:
    key = hashlib.sha256(f"edgechat-models\0{account_id}\0{api_base}".encode()).hexdigest()[:24]
    return cache_dir / f"models-{key}.json"


def read_cache(path: Path) -> CachedCatalog | None:
    """The cached catalog; None when there is none; CacheProblem when there is one we cannot use."""
    try:
        fd = open_regular(path, os.O_RDONLY)
    except StorageError as exc:
        raise CacheProblem(f"the cached model list is not a plain file ({exc.message})") from None
    except OSError as exc:
        raise CacheProblem(f"the cached model list cannot be read ({exc.strerror or exc})") from None
    if fd is None:
        return None
    try:
        with os.fdopen(fd, "rb") as file:
            raw = file.read(MAX_CACHE_BYTES + 1)
    except OSError as exc:
        raise CacheProblem(f"the cached model list cannot be read ({exc.strerror or exc})") from None
    if len(raw) > MAX_CACHE_BYTES:
        raise CacheProblem("the cached model list is too large")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise CacheProblem("the cached model list is damaged (not JSON)") from None
    if not isinstance(data, dict) or data.get("schema") != CACHE_SCHEMA:
        raise CacheProblem("the cached model list is of another format")
    fetched = data.get("fetched_at")
    if isinstance(fetched, bool) or not isinstance(fetched, int | float) or not 0 < fetched < 1e11:
        raise CacheProblem("the cached model list has no valid time")
    try:
        models = models_from_json(data.get("models"))
    except CatalogError as exc:
        raise CacheProblem(str(exc)) from None
    return CachedCatalog(models, float(fetched))


def write_cache(path: Path, models: list[CatalogModel], fetched_at: float | None = None) -> None:
    """Replace the cache atomically (0600; its folder 0700). Raises OSError or StorageError."""
    ensure_private_dir(path.parent, lambda _text: None)
    body = {"schema": CACHE_SCHEMA, "fetched_at": time.time() if fetched_at is None else fetched_at,
            "models": models_to_json(models)}
    durable_write(path, json.dumps(body, ensure_ascii=False, indent=1).encode("utf-8"), mode=0o600)
