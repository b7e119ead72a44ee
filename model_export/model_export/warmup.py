"""TF Serving warmup records: <version>/assets.extra/tf_serving_warmup_requests.

A TFRecord file of PredictionLog protos that the server replays when it loads a version, so the first
real request does not pay for graph initialisation (TF Serving reads at most 1000 records).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

WARMUP_RELATIVE_PATH = Path("assets.extra") / "tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000


def predict_log(model_name: str, signature_name: str, inputs: Mapping[str, Any]) -> Any:
    """One PredictionLog holding a PredictRequest; `inputs` values are anything tf.make_tensor_proto takes."""
    import tensorflow as tf
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    request = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature_name)
    )
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))


def write_warmup_records(saved_model_dir: Path, logs: Iterable[Any]) -> Path:
    import tensorflow as tf

    records = list(logs)
    if not 0 < len(records) <= MAX_WARMUP_RECORDS:
        raise ValueError(f"TF Serving replays 1..{MAX_WARMUP_RECORDS} warmup records, got {len(records)}")
    path = saved_model_dir / WARMUP_RELATIVE_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for log in records:
            writer.write(log.SerializeToString())
    return path


def read_warmup_records(path: Path) -> list[Any]:
    """Parse every record as a PredictionLog (raises if a record is not one)."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    logs = []
    for record in tf.data.TFRecordDataset(str(path)):
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(record.numpy())
        logs.append(log)
    return logs


def request_inputs(log: Any) -> dict[str, Any]:
    """The request's input tensors as tf.Tensors, ready to feed a loaded signature."""
    import tensorflow as tf

    return {key: tf.constant(tf.make_ndarray(proto)) for key, proto in log.predict_log.request.inputs.items()}


def digits_warmup_logs(model_name: str, pixels: Any) -> list[Any]:
    """A few requests like the ones clients send: one PNG, a small PNG batch, a JPEG, a dark-on-light
    drawing (exercises the inversion branch), and the pixel signature with one image and a batch."""
    from model_export import signatures as sig
    from model_export.dataset import encode_jpeg, encode_png

    pngs = [encode_png(image) for image in pixels]
    dark_on_light = encode_png(1.0 - pixels[0])
    return [
        predict_log(model_name, sig.IMAGE_SIGNATURE, {sig.IMAGE_INPUT: pngs[:1]}),
        predict_log(model_name, sig.IMAGE_SIGNATURE, {sig.IMAGE_INPUT: pngs[:8]}),
        predict_log(model_name, sig.IMAGE_SIGNATURE, {sig.IMAGE_INPUT: [encode_jpeg(pixels[1])]}),
        predict_log(model_name, sig.IMAGE_SIGNATURE, {sig.IMAGE_INPUT: [dark_on_light]}),
        predict_log(model_name, sig.PIXELS_SIGNATURE, {sig.PIXELS_INPUT: pixels[:1]}),
        predict_log(model_name, sig.PIXELS_SIGNATURE, {sig.PIXELS_INPUT: pixels[:8]}),
    ]


def half_plus_two_warmup_logs(model_name: str) -> list[Any]:
    import numpy as np

    return [predict_log(model_name, "serving_default", {"x": np.array([1.0, 2.0, 5.0], np.float32)})]
