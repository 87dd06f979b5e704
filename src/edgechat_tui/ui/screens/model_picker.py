"""The model picker: the account's text-generation models, each with its window, price and tools.

Opened by ``/model`` with no argument (local mode). It shows what the session knows at once (the
cached catalog, or the built-in table) and is given the fresh catalog when the background refresh
ends (:meth:`ModelPicker.show_catalog`). Enter (or a click) dismisses it with the chosen id; Esc
with None. Every field is catalog data: shown through ``Content`` built from sanitised plain
strings, never markup.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from edgechat_tui.core.sanitize import sanitize
from edgechat_tui.ui.usage_text import model_details

if TYPE_CHECKING:
    from edgechat_tui.backends.local.catalog import Catalog

__all__ = ["ModelPicker"]


class ModelPicker(ModalScreen[str | None]):
    """Choose a model for this session."""

    DEFAULT_CSS = """
    ModelPicker { align: center middle; }
    ModelPicker > Vertical {
        width: 100%;
        max-width: 112;
        height: auto;
        max-height: 90%;
        padding: 0 1;
        border: thick $primary 80%;
        background: $surface;
    }
    ModelPicker #title { text-style: bold; }
    ModelPicker #source, ModelPicker #note, ModelPicker #keys { color: $text-muted; }
    ModelPicker #note { color: $text-warning; }
    ModelPicker OptionList { height: auto; max-height: 20; margin: 1 0; }
    ModelPicker #description { height: auto; min-height: 1; color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close")]

    def __init__(self, catalog: Catalog, *, current: str | None, refreshing: bool = False) -> None:
        super().__init__()
        self.current = current
        self.catalog = catalog
        self.refreshing = refreshing
        self._list = OptionList(id="models")
        self._source = Static(id="source")
        self._note = Static(id="note")
        self._description = Static(id="description")

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Content("Choose a model for this session"), id="title")
            yield self._source
            yield self._note
            yield self._list
            yield self._description
            yield Static(Content("$ per million input/output tokens · tools: takes function calls\n"
                                 "↑↓ choose · Enter uses it for this session · Esc closes"), id="keys")

    def on_mount(self) -> None:
        self.show_catalog(self.catalog, refreshing=self.refreshing)
        self._list.focus()

    @property
    def model_ids(self) -> list[str]:
        """The ids listed, in order (for tests)."""
        return [str(option.id) for option in self._list.options]

    def show_catalog(self, catalog: Catalog, *, refreshing: bool = False) -> None:
        """List ``catalog``'s models, keeping the highlighted one where it is still listed."""
        self.catalog, self.refreshing = catalog, refreshing
        highlighted = self._list.highlighted_option.id if self._list.highlighted_option is not None else None
        source = catalog.describe + (" · checking your account for the current list…" if refreshing else "")
        self._source.update(Content(source))
        self._note.update(Content(sanitize(catalog.note)) if catalog.note else Content(""))
        self._note.display = bool(catalog.note)
        models = sorted(catalog.models, key=lambda m: (m.id != self.current, m.id))
        options = []
        seen: set[str] = set()
        width = max((len(model.id) for model in models), default=0)
        for model in models:
            if model.id in seen:
                continue
            seen.add(model.id)
            mark = "● " if model.id == self.current else "  "
            prompt = Content.assemble((mark, "$text-success"), (model.id, "bold" if mark.strip() else ""),
                                      " " * (width - len(model.id)),
                                      ("  " + model_details(model), "$text-muted"))
            options.append(Option(prompt, id=model.id))
        self._list.clear_options()
        self._list.add_options(options)
        ids = self.model_ids
        target = highlighted if highlighted in ids else self.current if self.current in ids else None
        if ids:
            self._list.highlighted = ids.index(target) if target is not None else 0
        self._describe()

    def _describe(self) -> None:
        option = self._list.highlighted_option
        model = self.catalog.get(str(option.id)) if option is not None else None
        self._description.update(Content(model.description) if model is not None and model.description
                                 else Content(""))

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        self._describe()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(str(event.option.id))

    def action_close(self) -> None:
        self.dismiss(None)
