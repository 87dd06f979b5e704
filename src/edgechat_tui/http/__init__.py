"""The one HTTP layer both backends use.

- :mod:`.client`: the client factory (TLS, timeouts, limits, user agent), a client that refuses use
  after close;
- :mod:`.transport`: the one map from transport failures to the errors users read;
- :mod:`.body`: capped reads of decoded bodies (whatever ``Content-Encoding`` says);
- :mod:`.sse`: server-sent events; :mod:`.retry`: the retry loop and its waits;
- :mod:`.deadline`: the overall deadline of a reply;
- :mod:`.text`, :mod:`.unicode`, :mod:`.jsondata`: server text masked and shortened, surrogate
  halves repaired, JSON parsed without a RecursionError.

The package's own ``__init__`` imports nothing, so importing a light module (``http.sse``) does not
load httpx.
"""

__all__ = ["body", "client", "deadline", "jsondata", "retry", "sse", "text", "transport", "unicode"]
