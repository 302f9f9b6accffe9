"""The reconcile stage allocates its Arrow tables from jemalloc's pool (reconcile/__init__.py)."""

import pyarrow as pa

import reconcile


def test_arrow_tables_come_from_jemalloc_where_the_build_has_it() -> None:
    try:
        pa.jemalloc_memory_pool()
    except NotImplementedError:  # a build without it keeps the default: nothing to check
        expected = pa.default_memory_pool().backend_name
    else:
        expected = "jemalloc"
    assert reconcile.__doc__
    assert pa.default_memory_pool().backend_name == expected
