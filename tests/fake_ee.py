"""earthengine-api with its HTTP layer replaced by a fake transport (the discovery document and algorithm
signatures are the ones earthengine-api ships for its own tests), for the Earth Engine source tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def fake_earth_engine(http) -> Iterator[object]:
    """Initialise ``ee`` so that every request goes to ``http.request(uri, method, body, headers, ...)``; restored
    on exit. The source caches are cleared on both sides."""
    import ee
    from ee import _state, apitestcase

    from heattrack.io import ecostress_gee, gee

    saved = (ee.data.getAlgorithms, ee.data._install_cloud_api_resource)
    ee.Reset()
    ee.data.getAlgorithms = apitestcase.GetAlgorithms
    ee.data._install_cloud_api_resource = lambda: None
    ee.Initialize(None, project="test-project")
    state = _state.get_state()
    state.cloud_api_resource = apitestcase._GenerateCloudApiResource(http, False)
    state.cloud_api_resource_raw = apitestcase._GenerateCloudApiResource(http, True)
    ee.data.setMaxRetries(0)
    gee._cached_fetch.cache_clear()
    ecostress_gee.cache_clear()
    try:
        yield http
    finally:
        ee.data.getAlgorithms, ee.data._install_cloud_api_resource = saved
        ee.Reset()
        gee._cached_fetch.cache_clear()
        ecostress_gee.cache_clear()
