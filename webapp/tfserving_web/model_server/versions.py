"""Which version of a model to ask for over REST, without a status call per prediction.

TF Serving's REST :predict answer does not say which version answered, so the REST transport
predicts against a version it names (`/versions/<n>:predict`). The version comes from the status
call and is reused for a short time (TTL); when the server answers that the version is gone (404:
a rollout unloaded it, or a host behind the load balancer never had it), it is forgotten and the
status asked again. gRPC needs none of this: its answer names the version.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from tfserving_web.model_server import Deadline, VersionStatus, serving_version

# status(model, deadline) -> the model's versions, as the transport's status call reports them
StatusCall = Callable[[str, Deadline], list[VersionStatus]]


class ServingVersions:
    """Per process, shared by the worker's threads."""

    def __init__(self, status: StatusCall, ttl_seconds: float) -> None:
        self._status = status
        self.ttl_seconds = ttl_seconds
        self._lock = threading.Lock()
        self._known: dict[str, tuple[int, float]] = {}  # model -> (version, when it was learned)

    def current(self, model: str, deadline: Deadline) -> int:
        """The version to ask for: the one kept if it is younger than the TTL, else a fresh one from
        the status call (which raises ModelUnavailable when no version serves)."""
        with self._lock:
            known = self._known.get(model)
        if known is not None and time.monotonic() - known[1] < self.ttl_seconds:
            return known[0]
        return self.refresh(model, deadline)

    def refresh(self, model: str, deadline: Deadline) -> int:
        version = serving_version(model, self._status(model, deadline))
        with self._lock:
            self._known[model] = (version, time.monotonic())
        return version

    def forget(self, model: str, version: int) -> None:
        """The server said `version` is gone; another thread may have learned a newer one already."""
        with self._lock:
            if self._known.get(model, (None, 0.0))[0] == version:
                del self._known[model]
