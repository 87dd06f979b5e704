"""``edgechat models [--json] [--refresh]``: the account's text-generation models, as ``/model`` lists them.

The cached catalog when it is fresh, else the account's (fetched, then cached); offline or on any
error the built-in table, with one warning on stderr saying why (the exit status stays 0: the list
is still printed). Every field is catalog data: printed through :mod:`.output`, which makes it safe.
"""

from __future__ import annotations

import argparse

from edgechat_tui.cli.commands import load
from edgechat_tui.cli.output import print_json, say, warn
from edgechat_tui.core.errors import NotSupported

__all__ = ["add_models_parser", "cmd_models"]


def add_models_parser(commands: argparse._SubParsersAction, add_common) -> None:
    models = commands.add_parser("models", help="list your account's text-generation models")
    add_common(models, top=False)
    models.add_argument("--json", dest="models_json", action="store_true",
                        help="print a list of {id, description, contextWindow, price, functionCalling}")
    models.add_argument("--refresh", action="store_true", help="ask the account even if the cache is fresh")


def cmd_models(args: argparse.Namespace) -> int:
    settings = load(args)
    if settings.remote_url:
        raise NotSupported("In remote mode the agent chooses its model; edgechat models lists a local "
                           "account's models.", hint="run it without --remote (and without remote_url set)")
    from edgechat_tui.backends.local.catalog import ModelCatalog

    catalog = ModelCatalog(settings)
    found = catalog.cached()
    if found.stale or getattr(args, "refresh", False):
        import asyncio

        found = asyncio.run(catalog.refresh())
    if found.note:
        warn(found.note)
    if getattr(args, "models_json", False):
        print_json([{
            "id": model.id,
            "description": model.description,
            "contextWindow": model.context_window,
            "price": None if model.price is None
            else {"input": model.price.input, "output": model.price.output},
            "functionCalling": model.function_calling,
        } for model in found.models])
        return 0
    from edgechat_tui.ui.usage_text import model_details

    width = max((len(model.id) for model in found.models), default=0)
    for model in found.models:
        say(f"{model.id:<{width}}  {model_details(model)}\n".replace("  \n", "\n"))
    say(f"{len(found.models)} models from {found.describe}; prices: $ per million input/output tokens\n",
        err=True)
    return 0
