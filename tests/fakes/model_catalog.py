"""What the loopback Workers AI fake answers at ``GET /accounts/{id}/ai/models/search``.

The answer has the service's shape (``shared/reference/cloudflare.md``, "Model list and search"):
the Cloudflare envelope, ``result`` a list of items ``{"id", "source", "name", "description",
"task": {"id", "name", "description"}, "created_at", "tags", "properties": [{"property_id",
"value"}]}`` and ``result_info`` ``{"page", "per_page", "count", "total_count", "total_pages"}``.
``context_window`` is a string of digits, ``price`` a list of ``{"unit", "price", "currency"}``,
``function_calling`` the string ``"true"``.

Tests change :attr:`FakeWorkersAI.catalog` (a list of items, hostile ones included) or set
:attr:`FakeWorkersAI.catalog_reply` (an error, or raw bytes) to see what the client does.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qs

__all__ = ["DEFAULT_PER_PAGE", "MAX_PER_PAGE", "PRICES", "catalog_item", "default_catalog", "search_page"]

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100

#: US dollars per million input / output tokens, and function calling (cloudflare.md section 2).
PRICES: dict[str, tuple[float, float, bool]] = {
    "@cf/meta/llama-3.3-70b-instruct-fp8-fast": (0.29, 2.25, True),
    "@cf/meta/llama-4-scout-17b-16e-instruct": (0.27, 0.85, True),
    "@cf/mistralai/mistral-small-3.1-24b-instruct": (0.35, 0.56, True),
    "@cf/qwen/qwen3-30b-a3b-fp8": (0.051, 0.34, True),
}


def catalog_item(name: str, *, window: int | str | None = None, price: tuple[float, float] | None = None,
                 function_calling: bool | None = None, description: str = "",
                 task: str = "Text Generation",
                 properties: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One catalog item as the service writes it."""
    props: list[dict[str, Any]] = list(properties or [])
    if window is not None:
        props.append({"property_id": "context_window", "value": str(window)})
    if price is not None:
        props.append({"property_id": "price", "value": [
            {"unit": "per M input tokens", "price": price[0], "currency": "USD"},
            {"unit": "per M output tokens", "price": price[1], "currency": "USD"},
        ]})
    if function_calling:
        props.append({"property_id": "function_calling", "value": "true"})
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
        "source": 1,
        "name": name,
        "description": description or f"{name.rsplit('/', 1)[-1]}, a text-generation model.",
        "task": {"id": "c329a1f9-323d-4e91-b2aa-582dd4188d34", "name": task,
                 "description": "Family of generative text models"},
        "created_at": "2025-01-01 00:00:00.000",
        "tags": [],
        "properties": props,
    }


def default_catalog(windows: dict[str, int]) -> list[dict[str, Any]]:
    """Every model the fake accepts, with its window and (where known) price; and one of another task."""
    items = []
    for name, window in windows.items():
        price = PRICES.get(name)
        items.append(catalog_item(name, window=window, price=price[:2] if price else None,
                                  function_calling=price[2] if price else None))
    items.append(catalog_item("@cf/baai/bge-base-en-v1.5", task="Text Embeddings"))
    return items


_BAD_PAGING = {"result": None, "success": False, "errors": [{"code": 7003, "message": "Invalid paging"}],
               "messages": []}


def search_page(items: list[dict[str, Any]], query: str) -> tuple[int, dict[str, Any]]:
    """The status and body the service answers for ``query`` over ``items``."""
    params = {key: values[-1] for key, values in parse_qs(query).items()}
    try:
        page = int(params.get("page", "1"))
        per_page = int(params.get("per_page", str(DEFAULT_PER_PAGE)))
    except ValueError:
        return 400, _BAD_PAGING
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        return 400, _BAD_PAGING
    found = items
    task = params.get("task")
    if task:
        found = [i for i in found if not isinstance(i, dict) or not isinstance(i.get("task"), dict)
                 or str(i["task"].get("name", "")).lower() == task.lower()]
    search = params.get("search")
    if search:
        found = [i for i in found if isinstance(i, dict) and search.lower() in str(i.get("name", "")).lower()]
    start = (page - 1) * per_page
    result = found[start:start + per_page]
    return 200, {
        "result": result,
        "result_info": {"page": page, "per_page": per_page, "count": len(result), "total_count": len(found),
                        "total_pages": -(-len(found) // per_page)},
        "success": True,
        "errors": [],
        "messages": [],
    }
