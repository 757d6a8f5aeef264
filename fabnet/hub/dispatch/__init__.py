"""The hub's dispatcher, in parts: inbox, offering, production, agent events, commands, and the
bus port they share (``BusPort``, with ``InMemoryBus`` for tests)."""

from fabnet.hub.dispatch.dispatcher import Dispatcher
from fabnet.hub.dispatch.port import BusPort, InMemoryBus

__all__ = ["BusPort", "Dispatcher", "InMemoryBus"]
