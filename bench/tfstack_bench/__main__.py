"""`python -m tfstack_bench` is the `tfstack-bench` command."""

from tfstack_bench.cli import main

main()
