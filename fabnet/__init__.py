"""fabnet: a distributed digital-fabrication job orchestrator for peer production."""

__version__ = "0.1.0"
