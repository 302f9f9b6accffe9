"""Benchmarks with targets (issue 7): ``python -m bench`` runs them all, ``--quick`` small N.

- ``bench.diff_bench`` (B1): the vectorised diff engine against a whole-snapshot DeepDiff.
- ``bench.snapshot_bench`` (B2): API calls a snapshot makes against the page-size lower bound.
- ``bench.replicator_bench`` (B3): IoT calls per applied event, and sandbox throughput.

Each writes ``bench/results/<name>.json`` (with the machine it ran on) and prints a summary;
``bench.__main__`` also writes ``bench/results/README.md``, the table the README links to.
"""
