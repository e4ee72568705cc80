"""The driver's per-tile cost of reading the tile records, from a local folder and from an object store (moto's S3
server on loopback, in its own process): one by one (``TileRecords.read``) against batched (``TileRecords.read_many``, one concurrent
batch of GETs per 64 records).

    .venv/bin/python benchmarks/record_reads.py --tiles 300 --points 18000

Each record is the size of a dense 10 km tile's (``--points`` pipe sample points, two dates; the 48 km benchmark
city has ~18,000 per tile). Loopback S3 answers in about a millisecond; a real object store's latency (tens of
ms per GET) multiplies what batching saves, so these figures are a lower bound of the gain there.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

from heattrack.io.records import TileSummary
from heattrack.io.store import TileRecords


def _record(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    per_date = rng.normal(size=(2, n)).astype(np.float32)
    return {"point_ids": np.arange(n, dtype=np.int64), "point_risk": per_date[0], "point_dt": per_date[1],
            "point_risk_by_date": per_date, "point_stat_by_date": per_date, "point_base_by_date": per_date,
            "ov_risk": rng.normal(size=(100, 100)).astype(np.float32),
            "ov_stat_by_date": rng.normal(size=(2, 100, 100)).astype(np.float32)}


def _time(records: TileRecords, tiles: list[tuple[int, int]]) -> tuple[float, float]:
    t0 = time.perf_counter()
    for idx in tiles:
        records.read(idx)
    t1 = time.perf_counter()
    for _ in records.read_many(tiles):
        pass
    return (t1 - t0) / len(tiles), (time.perf_counter() - t1) / len(tiles)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiles", type=int, default=300)
    ap.add_argument("--points", type=int, default=18_000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    tiles = [(i, 0) for i in range(args.tiles)]
    summary = TileSummary(tile="0_0", valid_fraction=1.0, n_valid=1, n_points=args.points, n_hotspots=0,
                          seconds={}, pixels=1_000_000, max_rss_mb=None, worker=None, sharpen={}, coregistration=None,
                          dates=[])
    arrays = _record(rng, args.points)
    with tempfile.TemporaryDirectory() as tmp:
        local = TileRecords(tmp)
        for idx in tiles:
            local.write(idx, arrays, summary)
        one, many = _time(local, tiles)
        size = os.path.getsize(os.path.join(tmp, ".heattrack", "tiles", "0_0.npz")) / 2**20
        print(f"local folder, {args.tiles} records of {size:.2f} MB: one by one {one * 1e3:.2f} ms per record, "
              f"batched {many * 1e3:.2f} ms")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # its own process: an in-process server would share this process's GIL with the client it serves
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    os.environ.update({"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "bench",
                       "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"})
    try:
        import s3fs

        s3fs.S3FileSystem().mkdir("bench")
        remote = TileRecords("s3://bench/run")
        for idx in tiles:
            remote.write(idx, arrays, summary)
        one, many = _time(remote, tiles)
        print(f"S3 on loopback (moto), {args.tiles} records: one by one {one * 1e3:.2f} ms per record, batched "
              f"{many * 1e3:.2f} ms ({one / many:.1f}x)")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
