"""Genea payloads turned into clean, hardware-neutral events."""
