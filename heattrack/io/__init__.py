"""IO layer: input sources (local product files, synthetic scenes), pipe networks, the zarr store, exports."""
