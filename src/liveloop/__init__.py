"""liveloop: growth engine for cross-border live commerce."""

__version__ = "0.1.0"
