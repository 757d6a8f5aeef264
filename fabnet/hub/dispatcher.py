"""``Dispatcher``, the one place the hub changes task and machine state: it lives in
``fabnet.hub.dispatch`` (inbox, offering, production, agent events, commands) and is imported
from here by the composition roots and the web layer."""

from fabnet.hub.dispatch.dispatcher import DEFAULT_MAX_MACHINES_PER_AGENT, Dispatcher

__all__ = ["DEFAULT_MAX_MACHINES_PER_AGENT", "Dispatcher"]
