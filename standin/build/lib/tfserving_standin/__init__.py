"""tfserving-stack's stand-in for tensorflow_model_server.

A test double of TensorFlow Serving's model server, written in Python on top of TensorFlow, grpcio,
Flask and waitress. It exists so the bundle (apt repository, package, systemd unit, models.config,
ports 8500/8501) can be exercised where the real server cannot be installed. It is not a
replacement for the real server and must never be deployed to production.
"""

STANDIN_VERSION = "2.21.0"
STANDIN_NOTICE = (
    "tfserving-stack stand-in for tensorflow_model_server: a test double of TensorFlow Serving, "
    "not a replacement; production uses the real tensorflow-model-server package"
)
