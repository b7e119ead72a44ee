"""What loading and unloading one version means: SavedModel session, then warmup replay."""

from __future__ import annotations

import dataclasses
import logging

from tfserving_standin import warmup
from tfserving_standin.errors import ServingError
from tfserving_standin.saved_model_loader import SavedModelBundle, SessionOptions, load_bundle

log = logging.getLogger("tensorflow.cc.saved_model.loader")


@dataclasses.dataclass
class ModelLoading:
    tags: tuple[str, ...]
    intra_op_parallelism: int
    inter_op_parallelism: int
    enable_warmup: bool
    warmup_iterations: int

    def load(self, name: str, path: str, version: int) -> SavedModelBundle:
        log.info("Reading SavedModel from: %s", path)
        bundle = load_bundle(
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
