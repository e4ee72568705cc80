"""A small STAC API on 127.0.0.1 for the tests: landing page, ``/search`` (GET and POST, paged with ``next``
links) and the COG assets of simulated scenes served with HTTP range requests, so the real pystac-client and
odc-stac/GDAL code paths run end to end without internet. Failures can be injected per asset."""

from __future__ import annotations

import json
import re
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import rasterio
from rasterio.warp import transform_bounds

CONFORMS = ["https://api.stacspec.org/v1.0.0/core", "https://api.stacspec.org/v1.0.0/item-search"]
_LS = re.compile(r"(L[COTEM]0\d_L2SP_\d{6}_(\d{8})_\d{8}_\d{2}_T\d)_(ST_B10|QA_PIXEL|SR_B4|SR_B5)\.TIF$", re.I)
_S2 = re.compile(r"(T\w{5}_(\d{8})T(\d{6}))_(B0[2-8]|B8A|B1[12]|SCL)_\d\dm\.tif$", re.I)
LS_KEYS = {"ST_B10": "lwir11", "QA_PIXEL": "qa_pixel", "SR_B4": "red", "SR_B5": "nir08"}
NODATA = {"qa_pixel": 1, "lwir11": 0, "red": 0, "nir08": 0, "SCL": 0,
          **{b: 0 for b in ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")}}


def _footprint(path: Path):
    with rasterio.open(path) as src:
        w, s, e, n = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    return [w, s, e, n], {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def items_from_scene(scene: Path, root: Path, base_url: str, cloud: dict | None = None) -> list[dict]:
    """STAC items (Landsat C2 L2 and S2 L2A, Planetary-Computer asset keys) for a local-layout scene folder
    below ``root``; asset hrefs under ``base_url/assets/``. ``cloud``: eo:cloud_cover per item id."""
    groups: dict[tuple[str, str], dict] = {}
    for f in sorted(scene.rglob("*")):
        if (m := _LS.search(f.name)):
            key, when, band = ("landsat-c2-l2", m.group(1)), m.group(2), LS_KEYS[m.group(3).upper()]
        elif (m := _S2.search(f.name)):
            key, when, band = ("sentinel-2-l2a", m.group(1)), m.group(2), m.group(4).upper()
        else:
            continue
        g = groups.setdefault(key, {"when": when, "assets": {}, "file": f})
        g["assets"][band] = f
    items = []
    for (collection, item_id), g in groups.items():
        bbox, geom = _footprint(g["file"])
        dt = datetime.strptime(g["when"], "%Y%m%d").replace(hour=2, tzinfo=timezone.utc)
        props = {"datetime": dt.isoformat().replace("+00:00", "Z"),
                 "eo:cloud_cover": (cloud or {}).get(item_id, 10.0), "proj:epsg": 32652}
        if collection == "sentinel-2-l2a":
            mtd = g["file"].parent / "MTD_MSIL2A.xml"
            base = re.search(r"<PROCESSING_BASELINE>\s*([\d.]+)", mtd.read_text()) if mtd.exists() else None
            props["s2:processing_baseline"] = base.group(1) if base else "05.10"
        assets = {k: {"href": f"{base_url}/assets/{p.relative_to(root).as_posix()}",
                      "type": "image/tiff; application=geotiff; profile=cloud-optimized", "roles": ["data"],
                      "raster:bands": [{"nodata": NODATA[k]}]} for k, p in g["assets"].items()}
        items.append({"type": "Feature", "stac_version": "1.0.0", "id": item_id, "collection": collection,
                      "bbox": bbox, "geometry": geom, "properties": props, "assets": assets, "links": [],
                      "stac_extensions": []})
    return items


class StacServer:
    """``with StacServer(root) as srv: srv.add(items)``; ``srv.url``; ``srv.fail[path] = n`` answers the next
    ``n`` requests for that asset path with 503; ``srv.requests`` logs (method, path)."""

    def __init__(self, root: Path, page_size: int = 2):
        self.root, self.page_size = Path(root), page_size
        self.items: list[dict] = []
        self.fail: dict[str, int] = {}
        self.requests: list[tuple[str, str]] = []
        self.auth: list[str | None] = []  # the Authorization header of every asset request
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _json(self, obj, code=200):
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_HEAD(self):
                self._asset(head=True)

            def do_GET(self):
                u = urlparse(self.path)
                server._log("GET", u.path)
                if u.path in ("", "/"):
                    return self._json(server.landing())
                if u.path == "/search":
                    q = {k: v[0] for k, v in parse_qs(u.query).items()}
                    return self._json(server.search(q, method="GET"))
                if u.path.startswith("/assets/"):
                    return self._asset(head=False)
                self._json({"code": "NotFound"}, 404)

            def do_POST(self):
                u = urlparse(self.path)
                server._log("POST", u.path)
                n = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(n) or b"{}")
                if u.path == "/search":
                    return self._json(server.search(body, method="POST"))
                self._json({"code": "NotFound"}, 404)

            def _asset(self, head: bool):
                rel = urlparse(self.path).path.removeprefix("/assets/")
                with server._lock:
                    server.auth.append(self.headers.get("Authorization"))
                    left = server.fail.get(rel, 0)
                    if left:
                        server.fail[rel] = left - 1
                if left:
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                f = server.root / rel
                if not f.is_file():
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = f.read_bytes()
                rng = self.headers.get("Range")
                if rng and (m := re.match(r"bytes=(\d+)-(\d*)", rng)):
                    a = int(m.group(1))
                    b = min(int(m.group(2)) if m.group(2) else len(data) - 1, len(data) - 1)
                    chunk = data[a: b + 1]
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {a}-{b}/{len(data)}")
                else:
                    chunk = data
                    self.send_response(200)
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Type", "image/tiff")
                self.send_header("Content-Length", str(len(chunk)))
                self.end_headers()
                if not head:
                    self.wfile.write(chunk)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def _log(self, method: str, path: str) -> None:
        with self._lock:
            self.requests.append((method, path))

    def __enter__(self) -> "StacServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def add(self, items: list[dict]) -> None:
        self.items.extend(items)

    def landing(self) -> dict:
        return {"type": "Catalog", "id": "heattrack-test", "stac_version": "1.0.0", "description": "test API",
                "conformsTo": CONFORMS,
                "links": [{"rel": "self", "href": self.url, "type": "application/json"},
                          {"rel": "root", "href": self.url, "type": "application/json"},
                          {"rel": "search", "href": f"{self.url}/search", "type": "application/geo+json",
                           "method": "GET"},
                          {"rel": "search", "href": f"{self.url}/search", "type": "application/geo+json",
                           "method": "POST"}]}

    def search(self, q: dict, method: str) -> dict:
        colls = q.get("collections")
        colls = colls.split(",") if isinstance(colls, str) else colls
        bbox = q.get("bbox")
        bbox = [float(v) for v in bbox.split(",")] if isinstance(bbox, str) else bbox
        lo, hi = None, None
        if q.get("datetime"):
            parts = str(q["datetime"]).split("/")
            lo = parts[0] if parts[0] not in ("", "..") else None
            hi = parts[-1] if parts[-1] not in ("", "..") else None
        hits = []
        for it in self.items:
            if colls and it["collection"] not in colls:
                continue
            if bbox:
                b = it["bbox"]
                if b[0] > bbox[2] or b[2] < bbox[0] or b[1] > bbox[3] or b[3] < bbox[1]:
                    continue
            d = it["properties"]["datetime"][:10]
            if (lo and d < lo[:10]) or (hi and d > hi[:10]):
                continue
            hits.append(it)
        start = int(q.get("token", 0) or 0)
        limit = min(int(q.get("limit", self.page_size) or self.page_size), self.page_size)
        page = hits[start: start + limit]
        links = []
        if start + limit < len(hits):
            if method == "GET":
                rest = "&".join(f"{k}={v}" for k, v in {**{k: (",".join(map(str, v)) if isinstance(v, list) else v)
                                                            for k, v in q.items()}, "token": start + limit}.items())
                links.append({"rel": "next", "href": f"{self.url}/search?{rest}", "type": "application/geo+json"})
            else:
                links.append({"rel": "next", "href": f"{self.url}/search", "method": "POST",
                              "body": {**q, "token": start + limit}, "type": "application/geo+json"})
        return {"type": "FeatureCollection", "features": page, "links": links,
                "numberMatched": len(hits), "numberReturned": len(page)}
