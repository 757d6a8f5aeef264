"""The pure domain of fabnet: jobs, tasks and their state machine, matching, ledger.

No sockets, files, threads, clocks or SQL live here; time comes in as an argument
(UTC-aware ``datetime``). Only the standard library and ``fabnet.errors`` are imported.
"""
