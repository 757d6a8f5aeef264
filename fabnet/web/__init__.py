"""Flask: the REST API (and, later, the dashboard). Parse, call, render; no logic here."""

from fabnet.web.app import create_app

__all__ = ["create_app"]
