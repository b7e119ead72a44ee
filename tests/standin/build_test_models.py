"""Builds the small SavedModels the stand-in's contract tests serve.

Run in its own process from the repository root (TensorFlow stays out of the pytest process):
  python -m tests.standin.build_test_models OUTPUT_DIR

OUTPUT_DIR/half_plus_two/1   serving_default: x float32 [None] -> y = 0.5 * x + 2
OUTPUT_DIR/half_plus_two_v2  a second version source: y = 0.5 * x + 3 (to publish as a new version)
OUTPUT_DIR/echo_bytes/1      serving_default: text string [None] -> text_bytes (same bytes), length int32
                             two_inputs: a float32 [None], b float32 [None] -> sum, product
OUTPUT_DIR/warmup/1          half_plus_two with an assets.extra/tf_serving_warmup_requests file of 3 records
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2


class HalfPlus(tf.Module):
    def __init__(self, offset: float) -> None:
        super().__init__()
        self.offset = tf.Variable(offset, dtype=tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"y": x * 0.5 + self.offset}


class EchoBytes(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"text_bytes": tf.identity(text), "length": tf.strings.length(text)}

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.float32, name="a"),
            tf.TensorSpec([None], tf.float32, name="b"),
        ]
    )
    def two_inputs(self, a: tf.Tensor, b: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"sum": a + b, "product": a * b}


def save_half_plus(directory: Path, offset: float) -> None:
    module = HalfPlus(offset)
    tf.saved_model.save(module, str(directory), signatures={"serving_default": module.serve})


def write_warmup(directory: Path, records: int) -> None:
    extra = directory / "assets.extra"
    extra.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(extra / "tf_serving_warmup_requests")) as writer:
        for index in range(records):
            request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name="warmup"))
            request.inputs["x"].CopyFrom(tf.make_tensor_proto([float(index)], dtype=tf.float32))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("output_dir", type=Path)
    args = parser.parse_args()
    out: Path = args.output_dir
    save_half_plus(out / "half_plus_two" / "1", 2.0)
    save_half_plus(out / "half_plus_two_v2", 3.0)
    echo = EchoBytes()
    tf.saved_model.save(
        echo,
        str(out / "echo_bytes" / "1"),
        signatures={"serving_default": echo.serve, "two_inputs": echo.two_inputs},
    )
    save_half_plus(out / "warmup" / "1", 2.0)
    write_warmup(out / "warmup" / "1", 3)
    return 0


if __name__ == "__main__":
    sys.exit(main())
