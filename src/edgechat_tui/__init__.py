"""edgechat: a terminal chat for Cloudflare Workers AI with a model that remembers you."""

__version__ = "0.1.0"
