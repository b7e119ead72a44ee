"""Browser security for the page and the API: response headers, the form's cross-site check, the
client's address behind a trusted proxy, and a per-client rate limit on /api/predict."""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict
from urllib.parse import urlsplit

from flask import Flask
from werkzeug.wrappers import Request, Response

# Everything from this origin only; no inline script or style (the templates have none). Images may
# also be `data:` (the result shows the checked upload without storing it, and the favicon is empty)
# and `blob:` (the upload form previews the chosen file locally): neither can run script.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers without CSP level 2
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def add_security_headers(response: Response) -> Response:
    """Each of SECURITY_HEADERS the view did not set itself. The names present are read in one pass:
    werkzeug's `setdefault` (like `in` and `get`) makes and catches an exception for every name it
    does not find, five per answer, which made this hook three times dearer than the JSON it follows."""
    headers = response.headers
    present = {name.lower() for name, _ in headers}
    for name, value in SECURITY_HEADERS.items():
        if name.lower() not in present:
            headers.add(name, value)
    return response


def is_cross_site_post(req: Request) -> bool:
    """A browser's form post from a page of another origin.

    Browsers send `Sec-Fetch-Site` with every request: only `same-origin` (and `none`, the user's own
    action) may post. Without it (older browsers), `Origin` must name this host and port; the scheme
    is not compared, since behind a TLS-terminating HAProxy the app sees http while the browser says
    https. `Origin: null` (sandboxed frames, data: pages) is refused then; under the page's
    `Referrer-Policy: no-referrer` browsers also send `null` on their own same-origin posts, which is
    why `Sec-Fetch-Site` is asked first. A program that sends neither header is no browser, and
    carries no visitor's cookie by accident: it is let through."""
    fetch_site = req.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        return fetch_site not in {"same-origin", "none"}
    origin = req.headers.get("Origin")
    if origin is None:
        return False
    if origin == "null":
        return True
    return urlsplit(origin).netloc.lower() != req.host.lower()


def client_address(req: Request, trusted_proxies: list[str]) -> str:
    """The client's address: the peer's, or, when the peer is a trusted proxy (HAProxy), the last
    X-Forwarded-For address not itself a trusted proxy. Addresses left of that one were written by
    the client and could be anything, so they are never used."""
    peer = req.remote_addr or ""
    if peer not in trusted_proxies:
        return peer
    forwarded = [part.strip() for part in ",".join(req.headers.getlist("X-Forwarded-For")).split(",")]
    for address in reversed([part for part in forwarded if part]):
        if address not in trusted_proxies:
            return address
    return peer


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


class TokenBuckets:
    """Per-client token buckets: `rate` requests per second on average, `burst` at once.

    Written here rather than taken from Flask-Limiter: the wheelhouse the deployment installs from is
    pinned and offline, and this is 30 lines. The buckets live in the worker process, so with N
    gunicorn workers a client gets at most N x the limit (requests are spread over the workers).
    At most `max_clients` buckets are kept; the least recently seen client is forgotten first."""

    def __init__(self, rate: float, burst: int, max_clients: int = 10_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, client: str, now: float | None = None) -> float:
        """0 when the request may go ahead, else the seconds until it may."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, seen = self._buckets.pop(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - seen) * self.rate)
            wait = 0.0
            if tokens >= 1:
                tokens -= 1
            else:
                wait = (1 - tokens) / self.rate
            self._buckets[client] = (tokens, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
            return wait


def rate_limit_wait(app: Flask, req: Request) -> float:
    """Seconds until this client may send again under RATE_LIMIT, 0 when it may go ahead now."""
    buckets: TokenBuckets | None = app.extensions.get("rate_limit")
    if buckets is None:
        return 0.0
    client = client_address(req, app.config["TRUSTED_PROXIES"])
    if is_loopback(client) and not app.config["RATE_LIMIT_LOOPBACK"]:
        return 0.0
    return buckets.take(client)


def init_security(app: Flask) -> None:
    config = app.config
    app.extensions["rate_limit"] = (
        TokenBuckets(config["RATE_LIMIT"] / 60.0, config["RATE_LIMIT_BURST"])
        if config["RATE_LIMIT"]
        else None
    )
    app.after_request(add_security_headers)
