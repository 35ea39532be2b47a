"""Who may see the status page: an admin token, from allowed addresses only.

The token comes as `Authorization: Bearer TOKEN` (scripts) or through the login
form, which sets an HttpOnly, SameSite=Strict cookie. The cookie holds an HMAC
of the token, not the token, so it changes when the token does. Every
comparison takes constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Callable
from urllib.parse import parse_qs, quote, urlsplit

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from genea_automate.config.observability import StatusConfig

COOKIE = "genea_status"
PREFIX = "/status"
SESSION_DAYS = 30
_SESSION_LABEL = b"genea-automate status session"
MAX_FORM_BYTES = 4096


class AdminAuth:
    """Checks requests against the `status` section, read afresh each time."""

    def __init__(self, config: Callable[[], StatusConfig]) -> None:
        self._config = config

    def refusal(self, request: Request) -> Response | None:
        """None when the request may see the page; else the answer to give."""
        closed = self.closed(request)
        if closed is not None or self.signed_in(request):
            return closed
        if request.headers.get("authorization"):
            return PlainTextResponse("Wrong admin token.", status_code=401)
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(
            f"{PREFIX}/login?next={quote(status_path(here), safe='/')}", 303
        )

    def closed(self, request: Request) -> Response | None:
        """The answer when the page is off or this address may not see it."""
        config = self._config()
        if config.admin_token is None:
            return PlainTextResponse(
                "The status page is off: set status.admin_token in the rules file.",
                status_code=404,
            )
        if not _allowed(request, config):
            return PlainTextResponse(
                "This address may not see the status page (status.allow_ips).",
                status_code=403,
            )
        return None

    def signed_in(self, request: Request) -> bool:
        token = self._token()
        if token is None:
            return False
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            return hmac.compare_digest(given.strip().encode(), token.encode())
        cookie = request.cookies.get(COOKIE, "")
        return hmac.compare_digest(cookie.encode(), _session(token).encode())

    def token_matches(self, given: str) -> bool:
        token = self._token()
        return token is not None and hmac.compare_digest(given.encode(), token.encode())

    def log_in(self, request: Request, target: str) -> Response:
        """Answer a good login: the session cookie, and on to `target`."""
        token = self._token()
        assert token is not None
        response = RedirectResponse(status_path(target), 303)
        response.set_cookie(
            COOKIE,
            _session(token),
            max_age=SESSION_DAYS * 86400,
            path=PREFIX,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    def _token(self) -> str | None:
        secret = self._config().admin_token
        return None if secret is None else secret.get_secret_value()


def log_out() -> Response:
    response = RedirectResponse(f"{PREFIX}/login", 303)
    response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="strict")
    return response


def same_origin(request: Request) -> bool:
    """False for a form posted from another site (a cross-site request forgery).

    SameSite=Strict keeps the cookie off such requests already; this also
    covers browsers that ignore it.
    """
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not a browser's form post
    return urlsplit(origin).netloc == request.headers.get("host")


async def form_fields(request: Request) -> dict[str, str]:
    """The fields of a small urlencoded form (the login form, a button)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def _session(token: str) -> str:
    return hmac.new(token.encode(), _SESSION_LABEL, hashlib.sha256).hexdigest()


def _allowed(request: Request, config: StatusConfig) -> bool:
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in config.allow_ips)


def status_path(target: str) -> str:
    """`target` if it is a path of the status page; never another site."""
    if target.startswith(PREFIX) and not target.startswith("//"):
        return target
    return PREFIX
