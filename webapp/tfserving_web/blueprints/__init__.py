"""The app's views: `pages` (HTML), `api` (JSON predictions), `health` (liveness and readiness)."""
