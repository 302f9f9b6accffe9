"""reconcile: snapshots of both regions, their diff, reports and repairs.

The stage holds whole registries as Arrow-backed tables (1M things: 353 MB of buffers for two
snapshots) and frees most of what a diff allocates once its report is made. pyarrow's default
pool (mimalloc) keeps freed pages mapped; jemalloc's (bundled in pyarrow's Linux wheels, where
the Lambda and the Fargate task run) hands them back: at 1M things the peak RSS of the inputs
and the diff was 90-120 MB lower in the same bench (bench/results/README.md, B1). Its decay is
0, set before any allocation ("this change will only affect future memory arenas", pyarrow's
``jemalloc_set_decay_ms``), so freed pages go back at once rather than over a second: reading
a 1M-thing table from Parquet left 366 MB resident for 174.5 MB of buffers, 231 MB with decay
0, and the bench's inputs and diff were 20-40 MB lower at the same or less CPU. Where a build
lacks jemalloc (``NotImplementedError``, pyarrow.jemalloc_memory_pool's documented answer), the
default stays.
"""

from contextlib import suppress

import pyarrow as pa

with suppress(NotImplementedError):  # a build without jemalloc: the default pool stays
    pa.set_memory_pool(pa.jemalloc_memory_pool())
    pa.jemalloc_set_decay_ms(0)
