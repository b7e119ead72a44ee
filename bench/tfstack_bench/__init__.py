"""tfstack-bench: what each serving path of tfserving-stack costs, in one interleaved run.

One module per job: `cli` (the command), `arguments` (its command line, checked), `stack` (a stand-in
and gunicorn it starts on loopback), `floor_apps` (the apps of the floor paths: an empty one, a gRPC relay),
`inputs` (the images sent), `paths` (one request over each path), `load` (closed-loop clients and the
interleaved schedule), `coldstart` (first request to a new version, rollout time), `summary`
(percentiles and ratios), `machine` (what it ran on), `report` (Markdown and JSON), `plots` (PNG),
`netns` (a network namespace of its own). `app_cost` is a second command, `tfstack-bench-app`: the web
app's own cost per prediction, its WSGI application called in-process; `install_time` a script of its own
(`python -m tfstack_bench.install_time`): a fresh host's install time from the mirror and from upstream.
"""
