"""Replaying `<version>/assets.extra/tf_serving_warmup_requests` at load (saved_model_warmup_util.cc).

The file is a TFRecord of PredictionLog protos, at most 1000 records; each PredictLog request is run
--num_request_iterations_for_warmup times against the freshly loaded version. A record that fails makes
the load fail, as in the real server.
"""

from __future__ import annotations

import logging
import os
import time

import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from tfserving_standin import metrics
from tfserving_standin.errors import Code, ServingError, invalid_argument
from tfserving_standin.saved_model_loader import SavedModelBundle

log = logging.getLogger("tensorflow_serving.servables.tensorflow.saved_model_warmup_util")

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_WARMUP_RECORDS = 1000


def replay(bundle: SavedModelBundle, export_dir: str, iterations: int) -> int:
    """Runs the warmup requests; returns how many records were replayed (0 when there is no file).

    Timed as model_warmup_latency{model_path, status} when the file exists and the replay succeeds or
    the file cannot be read; like the real single-threaded replay, a failing request is not recorded.
    """
    start = time.monotonic()
    path = os.path.join(export_dir, WARMUP_FILE)
    if not os.path.exists(path):
        log.info("No warmup data file found at %s", path)
        return 0
    records = 0
    try:
        for serialized in tf.data.TFRecordDataset(path).as_numpy_iterator():
            records += 1
            if records > MAX_WARMUP_RECORDS:
                raise invalid_argument(
                    f"Number of warmup records exceeds the maximum ({MAX_WARMUP_RECORDS}) at {path}"
                )
            entry = prediction_log_pb2.PredictionLog()
            entry.ParseFromString(serialized)
            kind = entry.WhichOneof("log_type")
            if kind != "predict_log":
                raise ServingError(
                    Code.UNIMPLEMENTED,
                    f"Unsupported log_type for warmup in the tfserving-stack stand-in: {kind}",
                )
            request = entry.predict_log.request
            inputs = {alias: tf.make_ndarray(proto) for alias, proto in request.inputs.items()}
            for _ in range(max(iterations, 1)):
                bundle.run(request.model_spec.signature_name, inputs, list(request.output_filter))
    except tf.errors.OpError as error:
        _record(export_dir, f"{Code(error.error_code).name}: {error.message}", start)
        raise ServingError(Code.DATA_LOSS, f"Failed to read warmup data at {path}: {error.message}") from None
    _record(export_dir, "OK", start)
    log.info(
        "Finished reading warmup data for model at %s. Number of warmup records read: %d.", path, records
    )
    return records


def _record(export_dir: str, status: str, start: float) -> None:
    """The status as absl::Status::ToString prints it: "OK" or "CODE: message"."""
    metrics.METRICS.observe(metrics.WARMUP_LATENCY, (export_dir, status), (time.monotonic() - start) * 1e6)
