"""What loading and unloading one version means: SavedModel session, then warmup replay."""

from __future__ import annotations

import dataclasses
import logging
import os
import time

from tfserving_standin import metrics, warmup
from tfserving_standin.errors import ServingError
from tfserving_standin.saved_model_loader import SavedModelBundle, SessionOptions, load_bundle

log = logging.getLogger("tensorflow.cc.saved_model.loader")

SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")


@dataclasses.dataclass
class ModelLoading:
    tags: tuple[str, ...]
    intra_op_parallelism: int
    inter_op_parallelism: int
    enable_warmup: bool
    warmup_iterations: int

    def load(self, name: str, path: str, version: int) -> SavedModelBundle:
        log.info("Reading SavedModel from: %s", path)
        bundle = _load_saved_model(
            path, SessionOptions(self.intra_op_parallelism, self.inter_op_parallelism, self.tags)
        )
        if self.enable_warmup:
            try:
                warmup.replay(bundle, path, self.warmup_iterations)
            except ServingError:
                bundle.close_when_idle()
                raise
        return bundle

    def unload(self, bundle: object) -> None:
        assert isinstance(bundle, SavedModelBundle)
        bundle.close_when_idle()


def _load_saved_model(path: str, options: SessionOptions) -> SavedModelBundle:
    """LoadSessionBundleOrSavedModelBundle: only a folder that looks like a SavedModel reaches
    LoadSavedModel, which counts the attempt (loader.cc). So a corrupt saved_model.pb counts a "fail",
    a folder without one is not counted, and a warmup failure comes after a "success"."""
    counted = any(os.path.exists(os.path.join(path, file)) for file in SAVED_MODEL_FILES)
    start = time.monotonic()
    succeeded = False
    try:
        bundle = load_bundle(path, options)
        succeeded = True
        return bundle
    finally:
        if counted:
            metrics.record_load(path, succeeded, (time.monotonic() - start) * 1e6)
