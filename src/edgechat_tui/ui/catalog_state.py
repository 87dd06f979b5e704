"""The session's model catalog: the models ``/model`` offers, their windows and prices. No Textual.

Local mode only (a remote agent chooses its own model). The cache is read when the app connects
(:meth:`SessionCatalog.load_cached`, in a thread: no network), so the usage line under each reply
and the context budget use the catalog's figures from the first frame with a history; the network
is asked only when ``/model`` opens its list (or ``edgechat models`` runs) and the cache is old or
missing. Before any catalog is read, and in remote mode, the built-in table answers.

The backend module is imported on first use, not with the app: the first frame does not wait for it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

from edgechat_tui.core.catalog import CatalogModel, ModelPrice, builtin_models, index

if TYPE_CHECKING:
    from edgechat_tui.backends.base import Agent
    from edgechat_tui.backends.local.catalog import Catalog, ModelCatalog
    from edgechat_tui.config.settings import Settings

__all__ = ["SessionCatalog"]

_BUILTIN = index(builtin_models())


class _Session(Protocol):
    @property
    def settings(self) -> Settings: ...
    @property
    def remote(self) -> bool: ...
    @property
    def agent(self) -> Agent | None: ...


class SessionCatalog:
    """The catalog as the session knows it now; :meth:`refresh` asks the account for it."""

    def __init__(self, session: _Session) -> None:
        self._session = session
        self._source: ModelCatalog | None = None
        self._source_settings: Settings | None = None
        #: The last catalog read (cache, account or built-in); None before the first.
        self.current: Catalog | None = None

    @property
    def available(self) -> bool:
        """False in remote mode: the agent there picks its own model."""
        return not self._session.remote

    def _catalog(self) -> ModelCatalog:
        settings = self._session.settings
        if self._source is None or self._source_settings is not settings:  # new credentials after /setup
            from edgechat_tui.backends.local.catalog import ModelCatalog

            self._source, self._source_settings = ModelCatalog(settings), settings
        return self._source

    async def load_cached(self) -> Catalog | None:
        """Read the cache (or the built-in table) in a thread and apply its window to the agent."""
        if not self.available:
            return None
        if self.current is None or self._source_settings is not self._session.settings:
            self.current = await asyncio.to_thread(self._catalog().cached)
        self.apply_window()
        return self.current

    async def refresh(self) -> Catalog | None:
        """Fetch the account's catalog (cached after); on failure the cache or the table, with a note."""
        if not self.available:
            return None
        self.current = await self._catalog().refresh()
        self.apply_window()
        return self.current

    def entry(self, model: str | None) -> CatalogModel | None:
        """What the catalog (else the built-in table) says of ``model``."""
        if not model:
            return None
        found = self.current.get(model) if self.current is not None else None
        return found or _BUILTIN.get(model)

    def model_ids(self) -> list[str]:
        """The ids ``/model`` completes: the catalog's (else the built-in table's)."""
        if self.current is None:
            return list(_BUILTIN)
        return list(dict.fromkeys(model.id for model in self.current.models))

    def price_of(self, model: str | None) -> ModelPrice | None:
        entry = self.entry(model)
        return entry.price if entry is not None else None

    def window_of(self, model: str | None) -> int | None:
        """The catalog's context window for ``model`` (not the table's: the agent knows those)."""
        found = self.current.get(model) if self.current is not None and model else None
        return found.context_window if found is not None else None

    def apply_window(self, agent: Agent | None = None) -> None:
        """Give a local agent the catalog's window for the model it uses."""
        agent = agent or self._session.agent
        setter = getattr(agent, "set_context_window", None)
        if agent is not None and setter is not None:
            setter(self.window_of(agent.info.model))
