"""Benchmarks of Gantry's data path on PostgreSQL (see bench/README.md).

Run from the project root, for example::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gantry_bench .venv/bin/python -m bench.ingest
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gantry_bench .venv/bin/python -m bench.recompute
"""
