"""The REST API's JSON <-> tensor rules (util/json_tensor.cc), with the real error messages.

Request values are checked against the dtype the signature declares; strings may be plain JSON
strings or {"b64": "..."}; output tensors whose alias ends in `_bytes` are written as {"b64": ...};
floats are written like absl::StrCat (6 significant digits, full precision when that does not
round-trip) with a trailing ".0" on whole numbers.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2

from tfserving_standin.errors import invalid_argument
from tfserving_standin.saved_model_loader import dtype_name

_DEBUG_STRING_LIMIT = 256


class RequestFormat(enum.Enum):
    ROW = "row"
    COLUMNAR = "columnar"


# Python json messages -> rapidjson's GetParseError_En texts, which clients may match on.
_PARSE_ERRORS = (
    ("Expecting property name enclosed in double quotes", "Missing a name for object member."),
    ("Expecting ':' delimiter", "Missing a colon after a name of object member."),
    ("Unterminated string", "Missing a closing quotation mark in string."),
    ("Invalid \\escape", "Invalid escape character in string."),
    ("Invalid control character", "Invalid encoding in string."),
)


def _rapidjson_message(error: json.JSONDecodeError) -> str:
    for python_text, rapidjson_text in _PARSE_ERRORS:
        if error.msg.startswith(python_text):
            return rapidjson_text
    if error.msg.startswith("Expecting ',' delimiter"):
        before = error.doc[: error.pos].rstrip()
        opener = _innermost_open_bracket(before)
        return (
            "Missing a comma or ']' after an array element."
            if opener == "["
            else "Missing a comma or '}' after an object member."
        )
    return "Invalid value."


def _innermost_open_bracket(text: str) -> str:
    depth: list[str] = []
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth.append(char)
        elif char in "]}" and depth:
            depth.pop()
    return depth[-1] if depth else ""


def parse_json(body: bytes) -> dict[str, Any]:
    if not body:
        raise invalid_argument("JSON Parse error: The document is empty")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise invalid_argument(
            f"JSON Parse error: Invalid encoding in string. at offset: {error.start}"
        ) from None
    if not text.strip():
        raise invalid_argument(f"JSON Parse error: The document is empty at offset: {len(text)}")
    try:
        # raw_decode: like rapidjson's kParseStopWhenDoneFlag, trailing text after the value is ignored.
        document, _ = json.JSONDecoder().raw_decode(text, len(text) - len(text.lstrip()))
    except json.JSONDecodeError as error:
        raise invalid_argument(
            f"JSON Parse error: {_rapidjson_message(error)} at offset: {len(text[: error.pos].encode())}"
        ) from None
    if not isinstance(document, dict):
        raise invalid_argument(f"JSON Value: {debug_string(document)} Is not object")
    return document


def debug_string(value: Any) -> str:
    return json.dumps(value, separators=(", ", ": "), ensure_ascii=False)[:_DEBUG_STRING_LIMIT]


def _json_type(value: Any) -> str:
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def _type_error(value: Any, dtype: tf.DType) -> Exception:
    return invalid_argument(
        f"JSON Value: {debug_string(value)} Type: {_json_type(value)} is not of expected type: "
        f"{dtype_name(dtype.as_datatype_enum)}"
    )


def _is_b64_object(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _scalar(value: Any, dtype: tf.DType) -> Any:
    """AddValueToTensor: one JSON leaf converted to the signature's dtype, or the real type error."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(value, dict):
        if dtype != tf.string:
            raise _type_error(value, dtype)
        if not _is_b64_object(value):
            raise invalid_argument(
                f"JSON Value: {debug_string(value)} not formatted correctly for base64 data"
            )
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError):
            raise invalid_argument("Unable to base64 decode") from None
    if dtype in (tf.float32, tf.float64, tf.float16, tf.bfloat16):
        if not is_number:
            raise _type_error(value, dtype)
        return value
    if dtype in (tf.int32, tf.int16, tf.int8, tf.uint8):
        if not (isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value < 2**31):
            raise _type_error(value, dtype)
        return value
    if dtype == tf.int64:
        if not (isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63):
            raise _type_error(value, dtype)
        return value
    if dtype in (tf.uint32, tf.uint64):
        limit = 2**32 if dtype == tf.uint32 else 2**64
        if not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value < limit):
            raise _type_error(value, dtype)
        return value
    if dtype == tf.bool:
        if not isinstance(value, bool):
            raise _type_error(value, dtype)
        return value
    if dtype == tf.string:
        if not isinstance(value, str):
            raise _type_error(value, dtype)
        return value.encode("utf-8")
    raise invalid_argument(
        f"Conversion of JSON Value: {debug_string(value)} to type: {dtype_name(dtype.as_datatype_enum)}"
    )


def _dense_shape(value: Any) -> list[int]:
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _fill(value: Any, level: int, shape: list[int], dtype: tf.DType, out: list[Any]) -> None:
    """FillTensorProto: every leaf at depth == rank, every list of the size the first path promised."""
    rank = len(shape)
    if not isinstance(value, list):
        if level != rank:
            raise invalid_argument(
                f"JSON Value: {debug_string(value)} found at incorrect level: {level + 1} in the JSON DOM. "
                f"Expected at level: {rank}"
            )
        out.append(_scalar(value, dtype))
        return
    if level >= rank:
        raise invalid_argument(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise invalid_argument(
            f"Encountered list at unexpected size: {len(value)} at level: {level} "
            f"expected size: {shape[level]}"
        )
    for item in value:
        _fill(item, level + 1, shape, dtype, out)


def _to_array(value: Any, dtype: tf.DType) -> tuple[list[int], list[Any]]:
    shape = _dense_shape(value)
    flat: list[Any] = []
    _fill(value, 0, shape, dtype, flat)
    return shape, flat


def _make_array(flat: list[Any], shape: list[int], dtype: tf.DType) -> np.ndarray:
    numpy_dtype = object if dtype == tf.string else dtype.as_numpy_dtype
    array = np.empty(len(flat), dtype=numpy_dtype)
    array[:] = flat
    return array.reshape(shape)


def _shape_text(shape: list[int]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def _is_element_object(value: Any) -> bool:
    """A row given as an object of named inputs (a {"b64": ...} value is a value, not an object)."""
    return isinstance(value, dict) and not _is_b64_object(value)


class _RowColumns:
    """The values of a row-format request gathered per input, every row's of the same size and shape."""

    def __init__(self, infos: Mapping[str, meta_graph_pb2.TensorInfo]) -> None:
        self.infos = infos
        self.flats: dict[str, list[Any]] = {}
        self.shapes: dict[str, list[int]] = {}
        self.sizes: dict[str, int] = {}

    def add(self, item: Any, name: str) -> None:
        if name not in self.infos:
            raise invalid_argument(f"JSON object: does not have named input: {name}")
        shape, flat = _to_array(item, tf.dtypes.as_dtype(self.infos[name].dtype))
        if name not in self.sizes:
            self.sizes[name], self.shapes[name] = len(flat), shape
        elif self.sizes[name] != len(flat):
            raise invalid_argument(f"Expecting tensor size: {self.sizes[name]} but got: {len(flat)}")
        elif self.shapes[name] != shape:
            raise invalid_argument(
                f"Expecting shape {_shape_text(self.shapes[name])} but got: {_shape_text(shape)}"
            )
        self.flats.setdefault(name, []).extend(flat)

    def tensors(self, rows: int) -> dict[str, np.ndarray]:
        return {
            name: _make_array(flat, [rows, *self.shapes[name]], tf.dtypes.as_dtype(self.infos[name].dtype))
            for name, flat in self.flats.items()
        }


def _add_object_row(columns: _RowColumns, index: int, element: Any) -> None:
    """A row of named inputs: each one added, then the names checked against the signature's."""
    if not _is_element_object(element):
        raise invalid_argument(f"Expecting object but got list at item {index} of input list")
    for key, item in element.items():
        try:
            columns.add(item, key)
        except Exception as error:
            raise invalid_argument(
                f"Failed to process element: {index} key: {key} of 'instances' list. Error: {error}"
            ) from None
    names = sorted(columns.infos)
    if set(element) != set(names):
        raise invalid_argument(
            f"Failed to process element: {index} of 'instances' list. "
            f"JSON object: {debug_string(element)} "
            f"keys must be equal to: {','.join(names)}"
        )


def _add_value_row(columns: _RowColumns, index: int, element: Any) -> None:
    """A row that is the value of the signature's only input."""
    if _is_element_object(element):
        raise invalid_argument(f"Expecting value/list but got object at item {index} of input list")
    try:
        columns.add(element, sorted(columns.infos)[0])
    except Exception as error:
        raise invalid_argument(
            f"Failed to process element: {index} of 'instances' list. Error: {error}"
        ) from None


def _instances_to_tensors(
    instances: list[Any], infos: Mapping[str, meta_graph_pb2.TensorInfo]
) -> dict[str, np.ndarray]:
    """FillTensorMapFromInstancesList: the first row decides whether rows are objects or values."""
    if not isinstance(instances[0], dict) and len(infos) > 1:
        raise invalid_argument(
            "instances is a plain list, but expecting list of objects as multiple input tensors "
            "required as per "
            "tensorinfo_map"
        )
    add_row = _add_object_row if _is_element_object(instances[0]) else _add_value_row
    columns = _RowColumns(infos)
    for index, element in enumerate(instances):
        add_row(columns, index, element)
    return columns.tensors(len(instances))


def _inputs_to_tensors(inputs: Any, infos: Mapping[str, meta_graph_pb2.TensorInfo]) -> dict[str, np.ndarray]:
    """FillTensorMapFromInputsMap."""
    if not isinstance(inputs, dict) or _is_b64_object(inputs):
        if len(infos) > 1:
            raise invalid_argument(
                "inputs is a plain value/list, but expecting an object as multiple input tensors "
                "required as per "
                "tensorinfo_map"
            )
        name = sorted(infos)[0]
        dtype = tf.dtypes.as_dtype(infos[name].dtype)
        shape, flat = _to_array(inputs, dtype)
        return {name: _make_array(flat, shape, dtype)}
    tensors = {}
    for name in sorted(infos):
        if name not in inputs:
            raise invalid_argument(f"Missing named input: {name} in 'inputs' object.")
        dtype = tf.dtypes.as_dtype(infos[name].dtype)
        shape, flat = _to_array(inputs[name], dtype)
        tensors[name] = _make_array(flat, shape, dtype)
    return tensors


def request_to_tensors(
    document: dict[str, Any], infos: Mapping[str, meta_graph_pb2.TensorInfo], signature_name: str
) -> tuple[dict[str, np.ndarray], RequestFormat]:
    """FillPredictRequestFromJson after the signature's input map is known."""
    if not infos:
        raise invalid_argument(f"Failed to get input map for signature: {signature_name or 'DEFAULT'}")
    has_instances, has_inputs = "instances" in document, "inputs" in document
    if has_instances and has_inputs:
        raise invalid_argument(
            f"JSON Value: {debug_string(document)} Not formatted correctly expecting only one of 'inputs' or "
            "'instances' keys to exist "
        )
    if has_instances:
        instances = document["instances"]
        if not isinstance(instances, list):
            raise invalid_argument(
                f"JSON Value: {debug_string(document)} Expecting 'instances' to be an list/array"
            )
        if not instances:
            raise invalid_argument(f"JSON Value: {debug_string(document)} No values in 'instances' array")
        return _instances_to_tensors(instances, infos), RequestFormat.ROW
    if has_inputs:
        return _inputs_to_tensors(document["inputs"], infos), RequestFormat.COLUMNAR
    raise invalid_argument("Missing 'inputs' or 'instances' key")


def signature_name_of(document: dict[str, Any]) -> str:
    name = document.get("signature_name", "")
    if not isinstance(name, str):
        raise invalid_argument(
            f"JSON Value: {debug_string(document)} not formatted correctly. 'signature_name' key must be a "
            "string value."
        )
    return name


# ---- writing -------------------------------------------------------------------------------------
def _decimal(value: float, is_float32: bool) -> str:
    """WriteDecimal in json_tensor.cc."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "-Infinity" if value < 0 else "Infinity"
    text = f"{value:g}"
    round_trips = (np.float32(float(text)) == np.float32(value)) if is_float32 else (float(text) == value)
    if not round_trips:
        text = f"{value:.9g}" if is_float32 else f"{value:.17g}"
    if "." not in text and "e" not in text:
        text += ".0"
    return text


_NEEDS_B64 = re.compile(r"_bytes$")


def _value_writer(array: np.ndarray, as_bytes: bool):
    kind = array.dtype.kind
    if kind == "f":
        is_float32 = array.dtype.itemsize <= 4
        return lambda v: _decimal(float(v), is_float32)
    if kind == "b":
        return lambda v: "true" if v else "false"
    if kind in "iu":
        return lambda v: str(int(v))
    if as_bytes:
        return lambda v: json.dumps({"b64": base64.b64encode(_as_bytes(v)).decode("ascii")})
    return lambda v: json.dumps(_as_bytes(v).decode("utf-8", errors="replace"), ensure_ascii=False)


def _as_bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def _write(value: Any, writer) -> str:
    if isinstance(value, np.ndarray):
        if value.ndim > 0:
            return "[" + ", ".join(_write(item, writer) for item in value) + "]"
        value = value[()]
    return writer(value)


def tensors_to_json(outputs: Mapping[str, np.ndarray], request_format: RequestFormat) -> str:
    """MakeRowFormatJsonFromTensors / MakeColumnarFormatJsonFromTensors."""
    if not outputs:
        raise invalid_argument("Cannot convert empty tensor map to JSON")
    names = sorted(outputs)
    writers = {
        n: _value_writer(outputs[n], outputs[n].dtype.kind in "OSU" and bool(_NEEDS_B64.search(n)))
        for n in names
    }
    if request_format is RequestFormat.COLUMNAR:
        if len(names) == 1:
            body = _write(outputs[names[0]], writers[names[0]])
        else:
            body = "{" + ", ".join(f"{json.dumps(n)}: {_write(outputs[n], writers[n])}" for n in names) + "}"
        return '{\n    "outputs": ' + body + "\n}"
    batch = None
    for name in names:
        array = outputs[name]
        if array.ndim == 0:
            raise invalid_argument(f"Tensor name: {name} has no shape information ")
        if batch is not None and array.shape[0] != batch:
            raise invalid_argument(
                f"Tensor name: {name} has inconsistent batch size: {array.shape[0]} expecting: {batch}"
            )
        batch = array.shape[0]
    rows = []
    for index in range(batch or 0):
        if len(names) == 1:
            rows.append(_write(outputs[names[0]][index], writers[names[0]]))
        else:
            rows.append(
                "{"
                + ", ".join(f"{json.dumps(n)}: {_write(outputs[n][index], writers[n])}" for n in names)
                + "}"
            )
    return '{\n    "predictions": [' + ", ".join(rows) + "\n    ]\n}"


def error_json(message: str) -> str:
    return '{ "error": ' + json.dumps(message, ensure_ascii=False) + " }"
