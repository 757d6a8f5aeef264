"""Moved to ``fabnet.roots.agent`` (issue 9); this name stays for older imports."""

from fabnet.roots.agent import Agent, run_agent

__all__ = ["Agent", "run_agent"]
