"""The account's model catalog: fetched from Workers AI, cached on disk, the built-in table offline.

:class:`ModelCatalog` answers "which text-generation models can this account use, with what
window, price and function calling". In order:

1. :meth:`ModelCatalog.cached` (no network; a thread on an event loop): the cache file if it is
   readable, else the built-in table. Its :attr:`Catalog.stale` says whether to refresh.
2. :meth:`ModelCatalog.refresh`: ``GET {api_base}/accounts/{id}/ai/models/search?task=Text
   Generation&page=N&per_page=100``, page after page as ``result_info`` says (at most
   :data:`MAX_PAGES` pages, :data:`~edgechat_tui.core.catalog.MAX_MODELS` models, 4 MiB a page,
   :data:`FETCH_TIMEOUT` seconds in all, no retries: it runs in the background), then the cache is
   rewritten atomically. On any failure (offline, a refused token, a malformed or hostile answer)
   it answers the cache or the built-in table, with :attr:`Catalog.note` saying why in one line.

The catalog lives on ``api.cloudflare.com`` even when chats go through an AI Gateway base, so a
gateway ``api_base`` asks the default API base (as the token check does). The token travels in the
Authorization header only; error text is masked and shortened by the Workers AI error table.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import quote as url_quote

import httpx

from edgechat_tui.backends.local.workers_ai import DEFAULT_API_BASE
from edgechat_tui.backends.local.workers_ai_errors import RequestContext, excerpt, map_error
from edgechat_tui.config.settings import Settings
from edgechat_tui.core.catalog import (
    MAX_MODELS,
    TEXT_GENERATION,
    CatalogError,
    CatalogModel,
    builtin_models,
    index,
    parse_search_page,
)
from edgechat_tui.core.errors import EdgechatError, StorageError
from edgechat_tui.http.body import read_capped
from edgechat_tui.http.client import HttpClient, timeouts
from edgechat_tui.http.jsondata import JSONDataError, loads
from edgechat_tui.http.text import Redactor
from edgechat_tui.http.transport import Where, transport_error
from edgechat_tui.storage.catalog_cache import CacheProblem, cache_path, read_cache, write_cache

__all__ = ["FETCH_TIMEOUT", "FRESH_FOR", "MAX_PAGES", "PER_PAGE", "Catalog", "ModelCatalog"]

#: A cached catalog younger than this is used as it is; an older one is shown and refreshed.
FRESH_FOR = 24 * 3600.0
MAX_PAGES = 20
PER_PAGE = 100
MAX_PAGE_BYTES = 4 * 1024 * 1024
FETCH_TIMEOUT = 30.0

Source = Literal["account", "cache", "built-in"]


@dataclass(frozen=True)
class Catalog:
    """A model list and where it came from: the account (just fetched), its cache, or the built-in table."""

    models: tuple[CatalogModel, ...]
    source: Source
    fetched_at: float | None = None
    #: One quiet line when something went wrong (why the built-in table, a cache that was damaged).
    note: str | None = None
    #: Catalog entries left out because they were not usable models.
    skipped: int = 0
    _by_id: dict[str, CatalogModel] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_id.update(index(self.models))

    def get(self, model_id: str | None) -> CatalogModel | None:
        return self._by_id.get(model_id) if model_id else None

    def age(self, now: float | None = None) -> float | None:
        if self.fetched_at is None:
            return None
        return max(0.0, (time.time() if now is None else now) - self.fetched_at)

    @property
    def stale(self) -> bool:
        """True when it should be fetched again: the built-in table, or a cache past :data:`FRESH_FOR`."""
        age = self.age()
        return age is None or age >= FRESH_FOR

    @property
    def describe(self) -> str:
        """Where the list came from, for a quiet line: ``your account's models (fetched 3 h ago)``."""
        if self.source == "built-in":
            return "edgechat's built-in model table"
        age = self.age() or 0.0
        when = ("just now" if age < 60 else f"{age / 60:.0f} min ago" if age < 3600
                else f"{age / 3600:.0f} h ago" if age < 172_800 else f"{age / 86400:.0f} days ago")
        return f"your account's models (fetched {when})"


def builtin_catalog(note: str | None = None) -> Catalog:
    return Catalog(tuple(builtin_models()), "built-in", note=note)


class ModelCatalog:
    """The catalog of one account: the cache file, the search endpoint, and the built-in fallback."""

    def __init__(self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._settings = settings
        self._account_id = settings.account_id or ""
        token = settings.api_token.reveal() if settings.api_token else ""
        self._token_given = bool(token)
        base = settings.api_base.rstrip("/")
        self._base = DEFAULT_API_BASE if base.endswith("/workers-ai") else base
        self._redactor = Redactor([token] if token else [])
        self._transport = transport
        self._clock = clock
        self.path: Path = cache_path(settings.cache_dir, self._account_id, self._base)
        #: The last catalog answered (cache, account or built-in); None before the first.
        self.current: Catalog | None = None

    def __repr__(self) -> str:
        return f"ModelCatalog(account_id={self._account_id!r}, path={str(self.path)!r})"

    # --- without the network ------------------------------------------------------------------

    def cached(self) -> Catalog:
        """The cache, or the built-in table (with a note when the cache could not be used). Blocking."""
        try:
            found = read_cache(self.path)
        except CacheProblem as problem:
            catalog = builtin_catalog(f"{problem}; it will be fetched again")
        else:
            catalog = (builtin_catalog() if found is None
                       else Catalog(tuple(found.models), "cache", fetched_at=found.fetched_at))
        self.current = catalog
        return catalog

    # --- from the account ---------------------------------------------------------------------

    async def refresh(self) -> Catalog:
        """Fetch the catalog and cache it; on failure, what there was, with a note saying why."""
        # A client of its own for each refresh, closed after it: nothing to close when the app ends.
        token = self._settings.api_token.reveal() if self._token_given else ""
        http = HttpClient(self._base, timeout=timeouts(connect=self._settings.connect_timeout,
                                                       read=self._settings.read_timeout),
                          headers={"Authorization": f"Bearer {token}"}, transport=self._transport)
        try:
            async with asyncio.timeout(FETCH_TIMEOUT):
                models, skipped = await self._fetch(http)
        except TimeoutError:
            return await self._fallback(f"the model list took more than {FETCH_TIMEOUT:.0f} s to arrive")
        except CatalogError as error:
            return await self._fallback(f"the model list could not be read: {error}")
        except EdgechatError as error:
            return await self._fallback(f"the model list could not be fetched: {error.message.rstrip('.')}")
        finally:
            await http.aclose()
        fetched_at = self._clock()
        note = None
        try:
            await asyncio.to_thread(write_cache, self.path, models, fetched_at)
        except (OSError, StorageError) as exc:
            why = exc.message if isinstance(exc, StorageError) else (exc.strerror or str(exc))
            note = f"the model list could not be saved in the cache ({why}); it is used for this session"
        catalog = Catalog(tuple(models), "account", fetched_at=fetched_at, note=note, skipped=skipped)
        self.current = catalog
        return catalog

    async def _fallback(self, why: str) -> Catalog:
        known = await asyncio.to_thread(self.cached)
        if known.source == "cache":
            catalog = Catalog(known.models, "cache", fetched_at=known.fetched_at,
                              note=f"{why}; showing the cached list")
        else:
            catalog = builtin_catalog(f"{why}; showing the built-in table")
        self.current = catalog
        return catalog

    def _url(self) -> str:
        return f"{self._base}/accounts/{url_quote(self._account_id, safe='')}/ai/models/search"

    async def _fetch(self, http: HttpClient) -> tuple[list[CatalogModel], int]:
        if not self._account_id or not self._token_given:
            raise CatalogError("no account id or API token is set")
        url = self._url()
        context = RequestContext(model="", account_id=self._account_id, url=url, redactor=self._redactor)
        models: dict[str, CatalogModel] = {}
        skipped = 0
        for page in range(1, MAX_PAGES + 1):
            query = {"task": TEXT_GENERATION, "page": page, "per_page": PER_PAGE}
            data = await self._get(http, url, query, context)
            found, info, dropped = parse_search_page(data)
            skipped += dropped
            for model in found:
                models.setdefault(model.id, model)
            listed = len(found) + dropped
            if len(models) >= MAX_MODELS:
                break
            if listed == 0 or listed < (info.per_page or PER_PAGE):
                break
            if info.total_pages is not None and page >= info.total_pages:
                break
            if info.total_count is not None and page * (info.per_page or PER_PAGE) >= info.total_count:
                break
        if not models:
            raise CatalogError("it lists no text-generation model edgechat can use"
                               + (f" ({skipped} entries were not usable)" if skipped else ""))
        return list(models.values())[:MAX_MODELS], skipped

    async def _get(self, http: HttpClient, url: str, params: dict[str, object],
                   context: RequestContext) -> object:
        where = Where(host=context.netloc, connect_timeout=self._settings.connect_timeout,
                      read_timeout=self._settings.read_timeout, redactor=self._redactor)
        try:
            request = http.build_request("GET", url, params=params, headers={"Accept": "application/json"})
            response = await http.send(request)
        except httpx.HTTPError as exc:
            raise transport_error(exc, where) from None
        try:
            try:
                raw, complete = await read_capped(response, MAX_PAGE_BYTES)
            except httpx.HTTPError as exc:
                raise transport_error(exc, dataclasses.replace(where, answered=True)) from None
        finally:
            with contextlib.suppress(httpx.HTTPError):
                await response.aclose()
        if not 200 <= response.status_code < 300:
            raise map_error(response.status_code, None, raw, complete, context)
        if not complete:
            raise CatalogError(f"a page is larger than {MAX_PAGE_BYTES // 2**20} MiB")
        try:
            return loads(raw)
        except JSONDataError:
            raise CatalogError(f"a page is not JSON: {excerpt(raw, context)}") from None
