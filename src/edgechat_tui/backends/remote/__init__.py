"""The remote agent: a deployed agent endpoint (the seed's Worker, or ours in worker/)."""

__all__ = ["agent", "capabilities", "endpoint", "errors", "history", "identity", "replies", "turn"]
