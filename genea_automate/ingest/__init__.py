"""Receiving Genea webhooks: signature checks and the HTTP app that stores them."""

from genea_automate.ingest.http import IngestHandler, create_ingest_app
from genea_automate.ingest.signature import SIGNATURE_HEADER, sign, verify

__all__ = [
    "SIGNATURE_HEADER",
    "IngestHandler",
    "create_ingest_app",
    "sign",
    "verify",
]
