"""Error statuses with TensorFlow's canonical codes, and their HTTP and gRPC equivalents."""

from __future__ import annotations

import enum
from http import HTTPStatus

import grpc


class Code(enum.IntEnum):
    """tensorflow.error.Code / absl::StatusCode numbers.

    Written out rather than taken from tensorflow.core.protobuf.error_codes_pb2: importing that module
    imports all of TensorFlow, and the config checks that use these codes must answer before it loads.
    """

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


# The mapping the real server's HTTP front end applies (model_servers/http_server.cc).
_HTTP_STATUS = {
    Code.OK: HTTPStatus.OK,
    Code.CANCELLED: 499,
    Code.UNKNOWN: HTTPStatus.INTERNAL_SERVER_ERROR,
    Code.INVALID_ARGUMENT: HTTPStatus.BAD_REQUEST,
    Code.DEADLINE_EXCEEDED: HTTPStatus.GATEWAY_TIMEOUT,
    Code.NOT_FOUND: HTTPStatus.NOT_FOUND,
    Code.ALREADY_EXISTS: HTTPStatus.CONFLICT,
    Code.PERMISSION_DENIED: HTTPStatus.FORBIDDEN,
    Code.RESOURCE_EXHAUSTED: HTTPStatus.TOO_MANY_REQUESTS,
    Code.FAILED_PRECONDITION: HTTPStatus.BAD_REQUEST,
    Code.ABORTED: HTTPStatus.CONFLICT,
    Code.OUT_OF_RANGE: HTTPStatus.BAD_REQUEST,
    Code.UNIMPLEMENTED: HTTPStatus.NOT_IMPLEMENTED,
    Code.INTERNAL: HTTPStatus.INTERNAL_SERVER_ERROR,
    Code.UNAVAILABLE: HTTPStatus.SERVICE_UNAVAILABLE,
    Code.DATA_LOSS: HTTPStatus.INTERNAL_SERVER_ERROR,
    Code.UNAUTHENTICATED: HTTPStatus.UNAUTHORIZED,
}


class ServingError(Exception):
    """A non-OK status: what the real server returns as absl::Status."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        # absl::Status::ToString(): "INVALID_ARGUMENT: message".
        return f"{self.code.name}: {self.message}"

    @property
    def http_status(self) -> int:
        return int(_HTTP_STATUS.get(self.code, HTTPStatus.INTERNAL_SERVER_ERROR))

    @property
    def grpc_code(self) -> grpc.StatusCode:
        return _GRPC_CODES[self.code]


_GRPC_CODES = {code: grpc.StatusCode[code.name] for code in Code}


def invalid_argument(message: str) -> ServingError:
    return ServingError(Code.INVALID_ARGUMENT, message)


def not_found(message: str) -> ServingError:
    return ServingError(Code.NOT_FOUND, message)


def failed_precondition(message: str) -> ServingError:
    return ServingError(Code.FAILED_PRECONDITION, message)


def from_tensorflow_error(error: Exception) -> ServingError:
    """Converts a tf.errors.OpError (which carries a canonical code) into a ServingError."""
    code = getattr(error, "error_code", Code.UNKNOWN)
    message = getattr(error, "message", str(error))
    try:
        return ServingError(Code(code), message)
    except ValueError:
        return ServingError(Code.UNKNOWN, message)
