"""edgechat: a terminal chat for Cloudflare Workers AI with a model that remembers you."""

__all__ = ["__version__"]

__version__ = "0.1.0"
