"""The network's economy (issue 11): prices, quotes, budgeted submits, acceptance and the
hub's auto-accept/refund tick over the credit ledger in the store."""

from fabnet.hub.economy.service import Economy, QuoteAnswer, TickReport

__all__ = ["Economy", "QuoteAnswer", "TickReport"]
