"""Build, sign and serve the local apt repository of the TF Serving stand-in (tfstack-standin-repo).

TF Serving's own apt repository cannot be reached from the machines this project is tested on, so
`make up` and the deployment tests install the stand-in (package tfserving_standin) from this
repository instead, through the same path the real package takes.

Modules, one job each: common (names, the cache folder, running a tool), sources (the project files a
build reads), package (the stand-in's wheel and the .deb around it), archive (signing key, indexes,
signed Release), build (the `build` command), serving (the HTTP server on 127.0.0.1), cli.
"""
