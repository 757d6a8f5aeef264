"""Moved to ``fabnet.roots.hub`` (issue 9); this name stays for older imports."""

from fabnet.roots.hub import HTTP_THREADS, HttpServer, Hub, run_hub

__all__ = ["HTTP_THREADS", "Hub", "HttpServer", "run_hub"]
