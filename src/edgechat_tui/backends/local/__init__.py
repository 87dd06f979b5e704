"""The local agent: history files on this machine, the Workers AI REST API called directly."""

__all__ = ["agent", "context", "workers_ai", "workers_ai_errors", "workers_ai_parse"]
