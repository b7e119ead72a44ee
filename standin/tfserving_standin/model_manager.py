"""Model lifecycle: polling base paths, version policies, the availability-preserving policy, labels.

Mirrors what ServerCore + FileSystemStoragePathSource + AspiredVersionsManager do in the real server:
- a poll lists integer version directories and tells the manager which versions are aspired;
- AvailabilityPreservingPolicy: an unaspired version is unloaded only once an aspired one is serving
  (or when the model has no aspired versions at all); the highest new aspired version is loaded next;
- a version that fails to load (after --max_num_load_retries) ends in state END with its error and is
  not tried again while it stays aspired, so the previous version keeps serving;
- a poll that finds no versions at all leaves the served versions alone ("Refusing to unload all");
- the state monitor keeps every version's last state, so unloaded versions show END.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import logging
import threading
from collections.abc import Callable, Iterator

from tensorflow_serving.apis.get_model_status_pb2 import ModelVersionStatus
from tensorflow_serving.config import model_server_config_pb2

from tfserving_standin import config_files, versions
from tfserving_standin.errors import Code, ServingError, failed_precondition, invalid_argument, not_found

log = logging.getLogger("tensorflow_serving.core.basic_manager")


class State(enum.IntEnum):
    """A version's state, numbered as ModelVersionStatus.State (apis/get_model_status.proto)."""

    UNKNOWN = ModelVersionStatus.UNKNOWN
    START = ModelVersionStatus.START
    LOADING = ModelVersionStatus.LOADING
    AVAILABLE = ModelVersionStatus.AVAILABLE
    UNLOADING = ModelVersionStatus.UNLOADING
    END = ModelVersionStatus.END


class Harness(enum.Enum):
    NEW = "new"
    LOADING = "loading"
    READY = "ready"
    ERROR = "error"
    DISABLED = "disabled"


@dataclasses.dataclass
class VersionSlot:
    """A version the manager currently tracks (LoaderHarness)."""

    version: int
    path: str
    aspired: bool = True
    harness: Harness = Harness.NEW
    bundle: object | None = None


@dataclasses.dataclass
class VersionState:
    state: State
    error: ServingError | None = None


@dataclasses.dataclass
class ManagerOptions:
    file_system_poll_wait_seconds: int = 1
    max_num_load_retries: int = 5
    load_retry_interval_micros: int = 60_000_000
    allow_version_labels_for_unavailable_models: bool = False


def servable_id(name: str, version: int) -> str:
    return f"{{name: {name} version: {version}}}"


Loader = Callable[[str, str, int], object]
Unloader = Callable[[object], None]


class ModelManager:
    """Owns the served versions of every configured model."""

    def __init__(self, options: ManagerOptions, load: Loader, unload: Unloader) -> None:
        self._options = options
        self._load = load
        self._unload = unload
        self._config: model_server_config_pb2.ModelServerConfig | None = None
        self._models: dict[str, model_server_config_pb2.ModelConfig] = {}
        self._slots: dict[str, dict[int, VersionSlot]] = {}
        self._states: dict[str, dict[int, VersionState]] = {}
        self._labels: dict[str, dict[str, int]] = {}
        self._lock = threading.Condition()  # guards the dicts above; notified on every state change
        # One poll/reload/load sequence at a time, like the real manager's single work loop.
        self._work_lock = threading.RLock()
        self._stop = threading.Event()
        self._poll_thread: threading.Thread | None = None

    # ---- configuration -------------------------------------------------------------------------
    def reload_config(self, new_config: model_server_config_pb2.ModelServerConfig) -> None:
        """ServerCore::ReloadConfig: validate, set labels, (re)add models, wait for the new ones."""
        with self._work_lock:
            if self._config is not None and new_config == self._config:
                self._apply_labels(new_config)
                return
            config_files.validate_model_config_list(new_config, self._config)
            if new_config.WhichOneof("config") is None:
                log.info("Taking no action for empty config.")
                return
            new_labels = self._checked_labels(new_config)
            models = {m.name: m for m in new_config.model_config_list.config}
            # Poll first so a missing base path rejects the config before anything changes.
            aspired = {name: self._poll_model(model) for name, model in models.items()}
            new_names = set(models) - set(self._models)
            log.info("Adding/updating models.")
            with self._lock:
                self._config = new_config
                self._labels = new_labels
                for name in set(self._models) - set(models):
                    for slot in self._slots.get(name, {}).values():
                        slot.aspired = False
                self._models = models
            for name in models:
                log.info(" (Re-)adding model: %s", name)
                self._set_aspired(name, aspired[name])
            self._reconcile_all()
            log.info("Finished adding/updating models")
        # Outside the work lock: a model without versions yet is picked up by the polling thread.
        self._wait_until_available(sorted(new_names))
        log.info("Finished reloading config")

    def _checked_labels(self, config: model_server_config_pb2.ModelServerConfig) -> dict[str, dict[str, int]]:
        """ServerCore::UpdateModelVersionLabelMap: labels may only name versions that are AVAILABLE now."""
        labels: dict[str, dict[str, int]] = {}
        with self._lock:
            for model in config.model_config_list.config:
                for label, version in model.version_labels.items():
                    allowed = False
                    if self._options.allow_version_labels_for_unavailable_models:
                        existing = self._labels.get(model.name, {}).get(label)
                        allowed = existing is None or existing == version
                    state = self._states.get(model.name, {}).get(version)
                    if not allowed and (state is None or state.state != State.AVAILABLE):
                        raise failed_precondition(
                            f"Request to assign label to version {version} of model {model.name}, "
                            "which is not currently available for inference"
                        )
                    labels.setdefault(model.name, {})[label] = version
        return labels

    def _apply_labels(self, config: model_server_config_pb2.ModelServerConfig) -> None:
        labels = self._checked_labels(config)
        with self._lock:
            self._labels = labels

    def config(self) -> model_server_config_pb2.ModelServerConfig | None:
        return self._config

    # ---- polling ---------------------------------------------------------------------------------
    def _poll_model(self, model: model_server_config_pb2.ModelConfig) -> dict[int, str]:
        return versions.aspired_versions(model.name, model.base_path, model.model_version_policy)

    def poll_once(self) -> None:
        """One file-system poll of every configured model's base path, then the resulting actions."""
        with self._work_lock:
            for name, model in list(self._models.items()):
                try:
                    aspired = self._poll_model(model)
                except ServingError as error:
                    log.error(
                        "FileSystemStoragePathSource encountered a filesystem access error: %s", error.message
                    )
                    continue
                if not aspired and any(s.aspired for s in self._slots.get(name, {}).values()):
                    log.error("Refusing to unload all versions for Servable: %s", name)
                    continue
                self._set_aspired(name, aspired)
            self._reconcile_all()

    def start_polling(self) -> None:
        interval = self._options.file_system_poll_wait_seconds
        if interval <= 0:
            return  # 0: the poll done at (re)load is the only one; negative: no polling.

        def poll_forever() -> None:
            while not self._stop.wait(interval):
                try:
                    self.poll_once()
                except Exception:  # a poll must never kill the polling thread
                    log.exception("File system poll failed")

        self._poll_thread = threading.Thread(target=poll_forever, name="fs_poll", daemon=True)
        self._poll_thread.start()

    def stop(self) -> None:
        self._stop.set()

    # ---- the aspired-versions manager -----------------------------------------------------------
    def _set_aspired(self, name: str, aspired: dict[int, str]) -> None:
        with self._lock:
            slots = self._slots.setdefault(name, {})
            for version, slot in slots.items():
                slot.aspired = version in aspired
            for version, path in aspired.items():
                if version not in slots:
                    slots[version] = VersionSlot(version=version, path=path)
                    self._set_state(name, version, State.START)

    def _reconcile_all(self) -> None:
        for name in list(self._slots):
            while self._next_action(name):
                pass

    def _next_action(self, name: str) -> bool:
        """AvailabilityPreservingPolicy::GetNextAction, then do it. False when nothing is left to do."""
        with self._lock:
            slots = self._slots.get(name, {})
            # Versions that ended (error or unloaded) and are no longer aspired are forgotten.
            for version in [
                v
                for v, s in slots.items()
                if not s.aspired and s.harness in (Harness.ERROR, Harness.DISABLED, Harness.NEW)
            ]:
                if slots[version].harness is Harness.NEW:
                    self._set_state(name, version, State.END)
                del slots[version]
            has_aspired = any(s.aspired for s in slots.values())
            has_aspired_serving = any(s.aspired and s.harness is Harness.READY for s in slots.values())
            unaspired_serving = sorted(
                v for v, s in slots.items() if not s.aspired and s.harness is Harness.READY
            )
            to_unload = None
            if unaspired_serving and (not has_aspired or has_aspired_serving or len(unaspired_serving) > 1):
                to_unload = unaspired_serving[0]
            to_load = None
            if to_unload is None:
                new = [v for v, s in slots.items() if s.aspired and s.harness is Harness.NEW]
                to_load = max(new) if new else None
        if to_unload is not None:
            self._unload_version(name, to_unload)
            return True
        if to_load is not None:
            self._load_version(name, to_load)
            return True
        return False

    def _load_version(self, name: str, version: int) -> None:
        with self._lock:
            slot = self._slots[name][version]
            slot.harness = Harness.LOADING
            self._set_state(name, version, State.LOADING)
        log.info("Approving load for servable version %s", servable_id(name, version))
        log.info("Loading servable version %s", servable_id(name, version))
        attempts = 1 + max(self._options.max_num_load_retries, 0)
        error: ServingError | None = None
        for attempt in range(attempts):
            if attempt:
                log.info(
                    "Retrying load on servable version: %s retry: %d", servable_id(name, version), attempt
                )
                if self._options.load_retry_interval_micros > 0 and self._stop.wait(
                    self._options.load_retry_interval_micros / 1e6
                ):
                    break
            try:
                bundle = self._load(name, slot.path, version)
            except ServingError as caught:
                error = caught
                log.error("Loading servable: %s failed: %s", servable_id(name, version), caught)
                continue
            with self._lock:
                slot.bundle = bundle
                slot.harness = Harness.READY
                self._set_state(name, version, State.AVAILABLE)
            log.info("Successfully loaded servable version %s", servable_id(name, version))
            return
        with self._lock:
            slot.harness = Harness.ERROR
            self._set_state(name, version, State.END, error)

    def _unload_version(self, name: str, version: int) -> None:
        with self._lock:
            slot = self._slots[name][version]
            bundle, slot.bundle = slot.bundle, None
            slot.harness = Harness.DISABLED
            self._set_state(name, version, State.UNLOADING)
        log.info("Quiescing servable version %s", servable_id(name, version))
        log.info("Unloading servable version %s", servable_id(name, version))
        if bundle is not None:
            self._unload(bundle)
        with self._lock:
            self._set_state(name, version, State.END)
        log.info("Done unloading servable version %s", servable_id(name, version))

    def _set_state(self, name: str, version: int, state: State, error: ServingError | None = None) -> None:
        # Caller holds self._lock.
        self._states.setdefault(name, {})[version] = VersionState(state, error)
        self._lock.notify_all()

    def _wait_until_available(self, names: list[str]) -> None:
        """ServerCore::WaitUntilModelsAvailable: each model's latest aspired version AVAILABLE or failed."""
        if not names:
            return

        def settled() -> dict[str, tuple[int, VersionState] | None] | None:
            outcome: dict[str, tuple[int, VersionState] | None] = {}
            for name in names:
                if self._stop.is_set():
                    return None
                slots = self._slots.get(name, {})
                aspired = [v for v, s in slots.items() if s.aspired]
                if not aspired:
                    return None
                latest = max(aspired)
                state = self._states[name][latest]
                if state.state == State.AVAILABLE:
                    outcome[name] = None
                elif state.state == State.END:
                    outcome[name] = (latest, state)
                else:
                    return None
            return outcome

        with self._lock:
            outcome = self._lock.wait_for(settled)
        failed = {name: value for name, value in (outcome or {}).items() if value is not None}
        if failed:
            parts = []
            for name, (version, state) in sorted(failed.items()):
                reason = f" due to error: {state.error}" if state.error else ""
                parts.append(f"{{{servable_id(name, version)}{reason}}}, ")
            raise ServingError(
                Code.UNKNOWN, f"{len(failed)} model(s) did not become available: {{{''.join(parts)}}}"
            )

    # ---- request side ----------------------------------------------------------------------------
    def resolve_label(self, name: str, label: str) -> int:
        with self._lock:
            version = self._labels.get(name, {}).get(label)
        if version is None:
            raise invalid_argument(f"Unrecognized servable version label: {label}")
        return version

    @contextlib.contextmanager
    def servable(self, name: str, version: int | None = None) -> Iterator[tuple[int, object]]:
        """A handle on a serving version: Latest(name) or Specific(name, version)."""
        with self._lock:
            ready = {v: s for v, s in self._slots.get(name, {}).items() if s.harness is Harness.READY}
            if version is None:
                chosen = max(ready) if ready else None
                request = f"Latest({name})"
            else:
                chosen = version if version in ready else None
                request = f"Specific({name}, {version})"
            if chosen is None:
                raise not_found(f"Servable not found for request: {request}")
            bundle = ready[chosen].bundle
            bundle.acquire()
        try:
            yield chosen, bundle
        finally:
            bundle.release()

    def version_states(self, name: str, version: int | None = None) -> list[tuple[int, VersionState]]:
        """GetModelStatusImpl: every version the state monitor knows, newest first."""
        with self._lock:
            states = dict(self._states.get(name, {}))
        if version is not None:
            if version not in states:
                raise not_found(f"Could not find version {version} of model {name}")
            return [(version, states[version])]
        if not states:
            raise not_found(f"Could not find any versions of model {name}")
        return sorted(states.items(), reverse=True)
