"""Orchestration: AOI and tile grid, per-tile task, Dask graph and cluster factory."""
