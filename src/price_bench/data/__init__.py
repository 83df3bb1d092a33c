"""The dataset layer.

* :mod:`~price_bench.data.sources`: where raw records come from (Hub, local files and folders), with provenance;
* :mod:`~price_bench.data.curation`: the named, versioned :class:`~price_bench.data.curation.Recipe` and its per-record rules;
* :mod:`~price_bench.data.pipeline`: the streaming run (de-duplication, sampling, split, leakage check);
* :mod:`~price_bench.data.neardup`: MinHash near-duplicate detection;
* :mod:`~price_bench.data.demo`: the synthetic ``demo`` catalog generator;
* :mod:`~price_bench.data.catalog`: ``get_dataset`` / ``build_dataset``;
* :mod:`~price_bench.data.dataset`: the on-disk format (parquet per split + ``manifest.json``), opened defensively;
* :mod:`~price_bench.data.folders`: writable data-home folders, and the cleanup of a killed build's leftovers.
"""
