"""Speed and memory benchmarks for stgcn (run ``python -m benchmarks.model --help``)."""
