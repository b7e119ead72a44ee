"""The app's views: `pages` (HTML), `api` (JSON predictions), `health` (liveness and readiness),
`monitoring` (GET /metrics and the hooks that count every request)."""
