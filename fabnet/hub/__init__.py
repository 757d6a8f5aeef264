"""The hub process: matches tasks to machines, produces G-code, serves it, keeps the ledger."""
