"""Composition roots: where processes are wired together — a hub in one of its roles
(``hub``, ``roles``, ``http``), an agent (``agent``), the demo (``demo``) and a whole simulated
network in one process (``network``). Nothing below this package imports it."""
