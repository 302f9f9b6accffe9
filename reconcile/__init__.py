"""reconcile: snapshots of both regions, their diff, reports and repairs.

The stage holds whole registries as Arrow-backed tables (1M things: 425 MB of buffers for two
snapshots) and frees most of what a diff allocates once its report is made. pyarrow's default
pool (mimalloc) keeps freed pages mapped; jemalloc's (bundled in pyarrow's Linux wheels, where
the Lambda and the Fargate task run) hands them back, and at 1M things its peak RSS for the
inputs and the diff was 125 MB lower in the same bench (bench/results/README.md, B1). Where a
build lacks jemalloc (``NotImplementedError``, pyarrow.jemalloc_memory_pool's documented
answer), the default stays.
"""

from contextlib import suppress

import pyarrow as pa

with suppress(NotImplementedError):  # a build without jemalloc: the default pool stays
    pa.set_memory_pool(pa.jemalloc_memory_pool())
