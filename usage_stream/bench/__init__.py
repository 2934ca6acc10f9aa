"""The performance benchmark: a private local stack, measured against a baseline copier."""

from usage_stream.bench.run import BenchOptions, run_bench

__all__ = ["BenchOptions", "run_bench"]
