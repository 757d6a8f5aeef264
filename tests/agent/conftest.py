"""The agent tests' fixtures live in ``agent_rig`` (importable by the tests, unlike a conftest)."""

from agent_rig import artifacts, make_rig

__all__ = ["artifacts", "make_rig"]
