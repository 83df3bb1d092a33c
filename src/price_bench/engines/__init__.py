"""Execution engines beyond this machine's processes (the ``ray`` extra).

* :mod:`~price_bench.engines.ray_session`: connecting to (or starting) a Ray cluster;
* :mod:`~price_bench.engines.ray_data`: ``data build --engine ray``, the curation recipe as a Ray Data pipeline;
* :mod:`~price_bench.engines.ray_predict`: ``run --engine ray``, batch prediction over an actor pool.

Ray is imported inside functions only, so nothing here costs anything without it.
"""
