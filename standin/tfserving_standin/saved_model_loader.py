"""Loading a SavedModel version with TensorFlow and running its signatures.

The real server loads a SavedModelBundle (MetaGraphDef + Session). The stand-in loads the version with
tf.saved_model.load (which handles TF2/Keras exports as well as TF1 ones) and calls the signature's
function; the MetaGraphDef it reports in metadata is read from saved_model.pb itself, so signature
names, tensor names, dtypes and shapes are exactly what the real server would report.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Mapping

import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from tfserving_standin.errors import Code, ServingError, from_tensorflow_error, invalid_argument

log = logging.getLogger("tensorflow.cc.saved_model.loader")

DEFAULT_SIGNATURE = "serving_default"


def dtype_name(dtype_enum: int) -> str:
    """tensorflow::DataTypeString, which is the enum's name without DT_, lower case: DT_FLOAT -> "float"."""
    return types_pb2.DataType.Name(dtype_enum).removeprefix("DT_").lower()


@dataclasses.dataclass
class SessionOptions:
    intra_op_parallelism: int = 0
    inter_op_parallelism: int = 0
    tags: tuple[str, ...] = ("serve",)


def read_meta_graph(export_dir: str, tags: tuple[str, ...]) -> meta_graph_pb2.MetaGraphDef:
    """The MetaGraphDef whose tag set equals `tags` (loader.cc FindMetaGraphDefToLoad)."""
    saved_model = saved_model_pb2.SavedModel()
    binary = os.path.join(export_dir, "saved_model.pb")
    text = os.path.join(export_dir, "saved_model.pbtxt")
    if os.path.exists(binary):
        with open(binary, "rb") as handle:
            try:
                saved_model.ParseFromString(handle.read())
            except Exception:
                raise ServingError(Code.DATA_LOSS, f"Can't parse {binary} as binary proto") from None
    elif os.path.exists(text):
        with open(text) as handle:
            text_format.Parse(handle.read(), saved_model)
    else:
        raise ServingError(
            Code.NOT_FOUND,
            f"Could not find SavedModel .pb or .pbtxt at supplied export directory path: {export_dir}. "
            "Check that the directory exists and that you have the right permissions for accessing it.",
        )
    for meta_graph in saved_model.meta_graphs:
        if set(meta_graph.meta_info_def.tags) == set(tags):
            return meta_graph
    raise ServingError(
        Code.NOT_FOUND,
        f"Could not find meta graph def matching supplied tags: {{ {' '.join(tags)} }}. To inspect available "
        "tag-sets in the SavedModel, please use the SavedModel CLI: `saved_model_cli`",
    )


class SavedModelBundle:
    """One loaded version: its functions + MetaGraphDef, with a count of requests still using it."""

    def __init__(self, export_dir: str, options: SessionOptions) -> None:
        self.export_dir = export_dir
        self.meta_graph_def = read_meta_graph(export_dir, options.tags)
        if options.intra_op_parallelism or options.inter_op_parallelism:
            _set_threading_once(options.intra_op_parallelism, options.inter_op_parallelism)
        self._loaded = tf.saved_model.load(export_dir, tags=list(options.tags))
        self._functions = {name: self._loaded.signatures[name] for name in self._loaded.signatures}
        self._in_use = 0
        self._idle = threading.Condition()

    @property
    def signature_defs(self) -> Mapping[str, meta_graph_pb2.SignatureDef]:
        return self.meta_graph_def.signature_def

    def acquire(self) -> None:
        with self._idle:
            self._in_use += 1

    def release(self) -> None:
        with self._idle:
            self._in_use -= 1
            self._idle.notify_all()

    def close_when_idle(self, timeout: float = 60.0) -> None:
        """Unloads after in-flight requests finish (as the real manager does via handles)."""
        with self._idle:
            self._idle.wait_for(lambda: self._in_use == 0, timeout=timeout)
        self._functions = {}
        self._loaded = None

    def run(
        self,
        signature_name: str,
        inputs: Mapping[str, np.ndarray],
        output_filter: list[str],
        timeout_in_ms: int = 0,
    ) -> dict[str, np.ndarray]:
        """predict_util.cc RunPredict: validate against the SignatureDef, then call the signature.

        Unlike the real server, `timeout_in_ms` is not enforced.
        """
        name = signature_name or DEFAULT_SIGNATURE
        not_found = ServingError(Code.FAILED_PRECONDITION, f'Serving signature key "{name}" not found.')
        signature = self.signature_defs.get(name)
        if signature is None:
            raise not_found
        arguments = _signature_arguments(signature, inputs)
        aliases = _output_aliases(signature, output_filter)
        function = self._functions.get(name)
        if function is None:
            raise not_found
        try:
            results = function(**arguments)
        except tf.errors.OpError as error:
            raise from_tensorflow_error(error) from None
        except (TypeError, ValueError) as error:
            # Shape or structure the signature's function refuses before running anything.
            raise invalid_argument(
                str(error).splitlines()[0] if str(error) else type(error).__name__
            ) from None
        return {alias: results[alias].numpy() for alias in aliases}


def _signature_arguments(
    signature: meta_graph_pb2.SignatureDef, inputs: Mapping[str, np.ndarray]
) -> dict[str, tf.Tensor]:
    """The inputs as tensors of the signature's dtypes; the real server's errors for a mismatch."""
    sent = set(inputs)
    expected = set(signature.inputs)
    if len(sent) > len(expected) or (len(sent) < len(expected) and not signature.defaults):
        raise invalid_argument(
            f"input size does not match signature: {len(sent)}!={len(expected)} "
            f"len({{{','.join(sorted(sent))}}}) != len({{{','.join(sorted(expected))}}}). "
            f"Sent extra: {{{','.join(sorted(sent - expected))}}}. "
            f"Missing but required: {{{','.join(sorted(expected - sent))}}}."
        )
    arguments = {}
    for position, (alias, value) in enumerate(sorted(inputs.items())):
        info = signature.inputs.get(alias)
        if info is None:
            raise invalid_argument(
                f"input tensor alias not found in signature: {alias}. Inputs expected to be in the set "
                f"{{{','.join(sorted(expected))}}}."
            )
        expected_dtype = tf.dtypes.as_dtype(info.dtype)
        given_dtype = tf.string if value.dtype.kind in "OSU" else tf.dtypes.as_dtype(value.dtype)
        if given_dtype != expected_dtype:
            raise invalid_argument(
                f"Expects arg[{position}] to be {dtype_name(info.dtype)} but "
                f"{dtype_name(given_dtype.as_datatype_enum)} is provided"
            )
        arguments[alias] = tf.constant(value, dtype=expected_dtype)
    return arguments


def _output_aliases(signature: meta_graph_pb2.SignatureDef, output_filter: list[str]) -> list[str]:
    """The outputs asked for (all, sorted, when the filter is empty), each checked to exist once."""
    aliases = list(output_filter) or sorted(signature.outputs)
    seen: set[str] = set()
    for alias in aliases:
        if alias not in signature.outputs:
            raise invalid_argument(
                f"output tensor alias not found in signature: {alias} Outputs expected to be in the set "
                f"{{{','.join(sorted(signature.outputs))}}}."
            )
        if alias in seen:
            raise invalid_argument(f"duplicate output tensor alias: {alias}")
        seen.add(alias)
    return aliases


_threading_lock = threading.Lock()


def _set_threading_once(intra: int, inter: int) -> None:
    """TensorFlow's thread pools are per process in eager mode: the first configured values win."""
    with _threading_lock:
        try:
            if intra:
                tf.config.threading.set_intra_op_parallelism_threads(intra)
            if inter:
                tf.config.threading.set_inter_op_parallelism_threads(inter)
        except RuntimeError:
            pass  # already initialised


def load_bundle(export_dir: str, options: SessionOptions) -> SavedModelBundle:
    """Loads a version directory; any failure becomes a ServingError carrying TensorFlow's message."""
    try:
        return SavedModelBundle(export_dir, options)
    except tf.errors.OpError as error:
        raise from_tensorflow_error(error) from None
    except (OSError, ValueError, RuntimeError) as error:
        raise ServingError(Code.UNKNOWN, f"Failed to load SavedModel from {export_dir}: {error}") from None
