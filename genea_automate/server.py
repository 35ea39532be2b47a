"""Serving the daemon with uvicorn, plain or with its own TLS."""

from __future__ import annotations

import logging
from pathlib import Path

import uvicorn

from genea_automate.app import Daemon
from genea_automate.config.endpoints import split_listen
from genea_automate.config.loader import load_config

logger = logging.getLogger(__name__)


def serve(config_path: Path, listen: str | None = None) -> int:
    """Run until SIGINT or SIGTERM; returns the exit status."""
    loaded = load_config(config_path)
    for warning in loaded.warnings:
        logger.warning("%s", warning)
    server = loaded.config.server
    host, port = split_listen(listen or server.listen)
    daemon = Daemon(loaded)
    tls = server.tls
    uvicorn.run(
        daemon.app,
        host=host,
        port=port,
        access_log=False,
        proxy_headers=False,  # trusted_proxies decides, per endpoint
        log_config=None,
        ssl_certfile=str(tls.certfile) if tls else None,
        ssl_keyfile=str(tls.keyfile) if tls else None,
    )
    return 0
