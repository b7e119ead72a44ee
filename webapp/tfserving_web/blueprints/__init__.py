"""The app's Flask views: `pages` (HTML), `health` (liveness and readiness), `monitoring` (GET /metrics
and the hooks that count every request Flask answers). The JSON API is not among them: it is a WSGI
app in front of Flask's (tfserving_web.prediction_api)."""
