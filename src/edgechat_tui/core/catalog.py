"""The model catalog: what a model is (window, price, function calls), read from untrusted data.

Workers AI's model search endpoint (``GET /accounts/{id}/ai/models/search``) lists an account's
models; its catalogue is hand-maintained, so every field is treated as optional and of uncertain
type. :func:`parse_search_page` turns one page of its answer into :class:`CatalogModel` values:

- a model whose ``name`` is not a model id (``@cf/author/name``, at most 128 characters of
  ``A-Z a-z 0-9 . _ - :``) is skipped: it could not be sent, and it could carry escape sequences or
  markup to the screen;
- a field of the wrong type or out of range is left unknown (``None``), never guessed:
  a context window is a whole number of 512 to 10,000,000 tokens (a number or a string of
  digits), a price is a finite number of 0 to 1,000 US dollars per million tokens, function
  calling is a boolean or the string ``"true"``/``"false"``;
- descriptions are sanitised, their whitespace folded, and cut to :data:`MAX_DESCRIPTION` characters;
- a page that is not the Cloudflare envelope (``success`` true, ``result`` a list) raises
  :class:`CatalogError`, so the caller falls back to the built-in table and says why.

The same validation reads the on-disk cache back (:func:`models_from_json`): a cache file is data
too. The built-in table (``core/data/models.json``) is :func:`builtin_models`.

Costs: the catalogue prices tokens in dollars; Workers AI bills neurons at
:data:`USD_PER_NEURON`. :func:`reply_cost` gives both for a reply's usage, or None when a figure it
needs is unknown.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from edgechat_tui.core.messages import Usage
from edgechat_tui.core.models import shared_data
from edgechat_tui.core.sanitize import sanitize

__all__ = [
    "MAX_DESCRIPTION",
    "MAX_MODELS",
    "TEXT_GENERATION",
    "USD_PER_NEURON",
    "CatalogError",
    "CatalogModel",
    "Cost",
    "ModelPrice",
    "PageInfo",
    "builtin_models",
    "index",
    "models_from_json",
    "models_to_json",
    "parse_model",
    "parse_search_page",
    "reply_cost",
    "valid_model_id",
]

TEXT_GENERATION = "Text Generation"
#: Most models kept from one catalog (all its pages): more is a fault, not an account.
MAX_MODELS = 1000
MAX_DESCRIPTION = 300
MAX_ID = 128
MIN_WINDOW, MAX_WINDOW = 512, 10_000_000
MAX_PRICE = 1000.0  # US dollars per million tokens
_ID = re.compile(r"@[a-z]+/[A-Za-z0-9._-]+/[A-Za-z0-9._:-]+")

_TABLE = shared_data("models.json")
#: What one neuron costs, in US dollars ($0.011 per 1,000 neurons).
USD_PER_NEURON: float = _TABLE["pricing"]["usd_per_1000_neurons"] / 1000


class CatalogError(ValueError):
    """The catalog's answer (or the cache) is not one we can read: fall back to the built-in table."""


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """US dollars per million tokens; either may be unknown."""

    input: float | None = None
    output: float | None = None


@dataclass(frozen=True, slots=True)
class CatalogModel:
    """One text-generation model as the catalog (or the built-in table) describes it."""

    id: str
    description: str = ""
    context_window: int | None = None
    price: ModelPrice | None = None
    function_calling: bool | None = None


@dataclass(frozen=True, slots=True)
class PageInfo:
    """``result_info`` of a page, each figure None when absent or not a sane whole number."""

    page: int | None = None
    per_page: int | None = None
    count: int | None = None
    total_count: int | None = None
    total_pages: int | None = None


@dataclass(frozen=True, slots=True)
class Cost:
    """What a reply cost: US dollars and the neurons they stand for."""

    dollars: float
    neurons: float


# --- fields -------------------------------------------------------------------------------------


def valid_model_id(value: Any) -> str | None:
    """``value`` if it is a model id edgechat can send (``@cf/author/name``), else None."""
    if isinstance(value, str) and len(value) <= MAX_ID and _ID.fullmatch(value):
        return value
    return None


def _whole(value: Any, low: int, high: int) -> int | None:
    if isinstance(value, str):
        text = value.strip()
        if not text.isascii() or not text.isdigit() or len(text) > 12:
            return None
        value = int(text)
    if type(value) is float and value.is_integer():
        value = int(value)
    if type(value) is not int or not low <= value <= high:
        return None
    return value


def _price(value: Any) -> float | None:
    if isinstance(value, str):
        try:
            value = float(value.strip().lstrip("$"))
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    if not math.isfinite(value) or not 0 <= value <= MAX_PRICE:
        return None
    return value


def _flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _text(value: Any, limit: int) -> str:
    if not isinstance(value, str):
        return ""
    text = " ".join(sanitize(value[: limit * 4]).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _prices(value: Any) -> ModelPrice | None:
    """The catalog's ``price`` property: ``[{"unit": "per M input tokens", "price": 0.29, ...}]``."""
    if not isinstance(value, list):
        return None
    found: dict[str, float] = {}
    for entry in value[:16]:
        if not isinstance(entry, dict):
            continue
        unit, currency = entry.get("unit"), entry.get("currency", "USD")
        if not isinstance(unit, str) or (currency is not None and currency != "USD"):
            continue
        words = unit.lower().split()
        if words[:2] not in (["per", "m"], ["per", "million"]) or words[-1:] != ["tokens"]:
            continue
        side = "input" if "input" in words else "output" if "output" in words else None
        amount = _price(entry.get("price"))
        if side and amount is not None and side not in found:
            found[side] = amount
    if not found:
        return None
    return ModelPrice(found.get("input"), found.get("output"))


def parse_model(item: Any) -> CatalogModel | None:
    """One catalog item, validated; None when it is not a text-generation model we could use."""
    if not isinstance(item, dict):
        return None
    model_id = valid_model_id(item.get("name"))
    if model_id is None:
        return None
    task = item.get("task")
    if isinstance(task, dict) and isinstance(task.get("name"), str) and task["name"] != TEXT_GENERATION:
        return None
    properties: dict[str, Any] = {}
    raw = item.get("properties")
    for prop in raw[:64] if isinstance(raw, list) else ():
        if isinstance(prop, dict) and isinstance(prop.get("property_id"), str):
            properties.setdefault(prop["property_id"], prop.get("value"))
    return CatalogModel(
        id=model_id,
        description=_text(item.get("description"), MAX_DESCRIPTION),
        context_window=_whole(properties.get("context_window"), MIN_WINDOW, MAX_WINDOW),
        price=_prices(properties.get("price")),
        function_calling=_flag(properties.get("function_calling")),
    )


def _page_info(value: Any) -> PageInfo:
    if not isinstance(value, dict):
        return PageInfo()
    figures = {key: _whole(value.get(key), 0, 1_000_000)
               for key in ("page", "per_page", "count", "total_count", "total_pages")}
    return PageInfo(**figures)


def parse_search_page(data: Any) -> tuple[list[CatalogModel], PageInfo, int]:
    """One page of the model search answer: its usable models, its paging, and how many were skipped.

    Raises CatalogError when the answer is not the envelope with a list of results.
    """
    if not isinstance(data, dict):
        raise CatalogError("the model list is not a JSON object")
    if data.get("success") is not True:
        raise CatalogError("the model list answer does not say it succeeded")
    result = data.get("result")
    if not isinstance(result, list):
        raise CatalogError("the model list answer holds no list of models")
    models: list[CatalogModel] = []
    skipped = 0
    for item in result[:MAX_MODELS]:
        model = parse_model(item)
        if model is None:
            skipped += 1
        else:
            models.append(model)
    skipped += max(0, len(result) - MAX_MODELS)
    return models, _page_info(data.get("result_info")), skipped


# --- the cache's form -----------------------------------------------------------------------------


def models_to_json(models: Iterable[CatalogModel]) -> list[dict[str, Any]]:
    """The models as the cache stores them (the same fields the catalog has)."""
    out = []
    for model in models:
        entry: dict[str, Any] = {"name": model.id, "description": model.description,
                                 "task": {"name": TEXT_GENERATION}, "properties": []}
        if model.context_window is not None:
            entry["properties"].append({"property_id": "context_window", "value": str(model.context_window)})
        if model.price is not None:
            prices = [{"unit": f"per M {side} tokens", "price": amount, "currency": "USD"}
                      for side, amount in (("input", model.price.input), ("output", model.price.output))
                      if amount is not None]
            entry["properties"].append({"property_id": "price", "value": prices})
        if model.function_calling is not None:
            entry["properties"].append({"property_id": "function_calling",
                                        "value": "true" if model.function_calling else "false"})
        out.append(entry)
    return out


def models_from_json(items: Any) -> list[CatalogModel]:
    """Models read back from the cache, validated as the catalog's are. Raises CatalogError."""
    if not isinstance(items, list) or len(items) > MAX_MODELS:
        raise CatalogError("the cached model list is not a list of models")
    models = [model for model in (parse_model(item) for item in items) if model is not None]
    if len(models) != len(items) or not models:
        raise CatalogError("the cached model list holds entries that are not models")
    return models


def builtin_models() -> list[CatalogModel]:
    """The built-in table (``core/data/models.json``), as catalog models."""
    models = []
    for model_id, entry in _TABLE["models"].items():
        price = entry.get("price")
        models.append(CatalogModel(
            id=model_id,
            context_window=entry["context_window"],
            price=ModelPrice(price.get("input"), price.get("output")) if price else None,
            function_calling=entry.get("function_calling"),
        ))
    return models


# --- cost -------------------------------------------------------------------------------------------


def reply_cost(usage: Usage | None, price: ModelPrice | None) -> Cost | None:
    """The cost of a reply, when its token counts and the model's prices for them are all known."""
    if usage is None or price is None:
        return None
    if usage.prompt_tokens is None or usage.completion_tokens is None:
        return None
    if price.input is None or price.output is None:
        return None
    dollars = (usage.prompt_tokens * price.input + usage.completion_tokens * price.output) / 1_000_000
    return Cost(dollars=dollars, neurons=dollars / USD_PER_NEURON)


def index(models: Iterable[CatalogModel]) -> Mapping[str, CatalogModel]:
    """Models by id, the first of each id kept."""
    found: dict[str, CatalogModel] = {}
    for model in models:
        found.setdefault(model.id, model)
    return found
