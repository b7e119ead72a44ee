"""The anonymous visitor of the page: a random id in Flask's signed session cookie (HttpOnly,
SameSite=Lax), so each visitor's page lists only their own predictions. No accounts; the JSON API
never reads or sets the cookie."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

from flask import Flask, Request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer

SECRET_KEY_FILE = "secret_key"
VISITOR_KEY = "visitor"


class VisitorCookie(SecureCookieSessionInterface):
    """Flask's signed cookie session, whose key (when SECRET_KEY is empty) is read from the instance
    folder only when a cookie is first read or written: building the app (and `gunicorn
    --check-config`) writes nothing.

    Flask opens the session for every request it answers (pages, probes, scrapes; the JSON API is
    answered before Flask), and its interface builds a new serializer each time (about 5% of a
    prediction's Python when the API was a Flask view, py-spy): the serializer is kept, and made again
    only when the key changes. It holds no per-request state, so threads can share it."""

    def __init__(self) -> None:
        self._serializer: tuple[object, URLSafeTimedSerializer | None] | None = None

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        # No Cookie header (load balancers' health checks, a browser's first visit; the JSON API never
        # gets here): the empty session Flask would open, without fetching the key and parsing the
        # absent cookies first.
        if "HTTP_COOKIE" not in request.environ:
            return self.session_class()
        return super().open_session(app, request)

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        if not app.secret_key:
            app.secret_key = _instance_secret_key(app.instance_path)
        keys = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        kept = self._serializer
        if kept is None or kept[0] != keys:
            kept = self._serializer = (keys, super().get_signing_serializer(app))
        return kept[1]


def configure_cookie(app: Flask) -> None:
    app.session_interface = VisitorCookie()
    app.config["SESSION_COOKIE_NAME"] = "tfweb_visitor"
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    # Long enough to come back to the page; the uploads themselves expire after UPLOADS_MAX_AGE.
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(days=30)


def _instance_secret_key(instance_path: str) -> str:
    """A random key kept in the instance folder, made by the first worker that needs it (O_EXCL: all
    workers of the host read the same one)."""
    path = Path(instance_path) / SECRET_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with open(descriptor, "w") as handle:
                handle.write(secrets.token_hex(32))
    for _ in range(100):  # another worker may be writing it this instant
        key = path.read_text().strip()
        if key:
            return key
        os.sched_yield()
    raise RuntimeError(f"{path} is empty: delete it, and it is made again")


def current_visitor(create: bool) -> str:
    """This browser's visitor id; a new one (and the cookie) when `create` and there is none."""
    visitor = session.get(VISITOR_KEY)
    if isinstance(visitor, str) and len(visitor) == 32:
        return visitor
    if not create:
        return ""
    session.permanent = True
    session[VISITOR_KEY] = secrets.token_hex(16)
    return session[VISITOR_KEY]
