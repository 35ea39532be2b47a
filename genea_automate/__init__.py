"""genea-automate: a rules engine for Genea access-control webhooks."""

__version__ = "0.1.0"
