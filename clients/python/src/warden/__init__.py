"""Python client for Warden, the audit and policy compliance gateway.

>>> import warden
>>> with warden.Client("http://127.0.0.1:8181", token) as client:
...     decision = client.decide("agento/commissioning/routing", {"test_results": []})
...     warden.verify.verify_receipt(decision.raw, client.verifier_keys())
"""

from . import canonical, merkle, note, verify
from ._calls import UNSET
from ._version import __version__
from .async_client import AsyncClient
from .bundle import build_bundle, build_bundle_dir
from .client import Client
from .errors import (
    AuthError,
    BadRequest,
    Conflict,
    IntentDenied,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    Unprocessable,
    VerificationError,
    WardenError,
)
from .models import Decision
from .sse import Event, SSEParser
from .streams import AsyncEventStream, EventStream, StreamOptions
from .verify import ExportReport, ReceiptReport

__all__ = [
    "__version__",
    "AsyncClient",
    "AsyncEventStream",
    "AuthError",
    "BadRequest",
    "Client",
    "Conflict",
    "Decision",
    "Event",
    "EventStream",
    "ExportReport",
    "IntentDenied",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "ReceiptReport",
    "SSEParser",
    "ServerError",
    "StreamOptions",
    "UNSET",
    "Unprocessable",
    "VerificationError",
    "WardenError",
    "build_bundle",
    "build_bundle_dir",
    "canonical",
    "merkle",
    "note",
    "verify",
]
