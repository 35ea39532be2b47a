"""Serving the daemon with uvicorn, plain or with its own TLS."""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from types import FrameType

import uvicorn

from genea_automate.app import Daemon
from genea_automate.config.endpoints import split_listen
from genea_automate.config.loader import load_config
from genea_automate.errors import GeneaAutomateError

logger = logging.getLogger(__name__)

# How long open connections may take to finish once SIGTERM came; then uvicorn
# cancels them, and the lifespan stops the daemon (its own bound: app.py).
REQUEST_GRACE = 5


class DaemonServer(uvicorn.Server):
    """uvicorn, answering 503 from the moment SIGTERM or SIGINT arrives.

    uvicorn stops listening a moment later; a webhook that comes in between
    is refused with 503 "shutting down" rather than left unanswered, so
    Genea retries it, against this daemon's successor.
    """

    def __init__(self, config: uvicorn.Config, daemon: Daemon) -> None:
        super().__init__(config)
        self._daemon = daemon

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._daemon.draining = True
        super().handle_exit(sig, frame)


def serve(config_path: Path, listen: str | None = None) -> int:
    """Run until SIGINT or SIGTERM; returns the exit status."""
    loaded = load_config(config_path)
    for warning in loaded.warnings:
        logger.warning("%s", warning)
    server = loaded.config.server
    try:
        host, port = split_listen(listen or server.listen)
    except ValueError as exc:
        raise GeneaAutomateError(str(exc)) from None
    _check_port_free(host, port)
    daemon = Daemon(loaded, decide_apart=True)
    daemon.store.check_can_open()
    tls = server.tls
    config = uvicorn.Config(
        daemon.app,
        host=host,
        port=port,
        access_log=False,
        proxy_headers=False,  # trusted_proxies decides, per endpoint
        log_config=None,
        ssl_certfile=str(tls.certfile) if tls else None,
        ssl_keyfile=str(tls.keyfile) if tls else None,
        timeout_graceful_shutdown=REQUEST_GRACE,
    )
    try:
        DaemonServer(config, daemon).run()
    except KeyboardInterrupt:
        # uvicorn raises Ctrl-C's signal again once it has shut down in order;
        # the log already says so, a traceback would only alarm.
        pass
    return 0


def _check_port_free(host: str, port: int) -> None:
    """Fail before start-up, in plain words, when the address is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise GeneaAutomateError(
                f"cannot listen on {host}:{port}: {exc.strerror}; another program "
                "(or another genea-automate) may use it: stop it, or pick another "
                "address with --listen or server.listen"
            ) from None
