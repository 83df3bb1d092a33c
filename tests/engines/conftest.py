"""A real Ray cluster on this machine: a head node and one more node (ray.cluster_utils.Cluster), never a mock."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="session")
def ray_cluster():
    """Head (1 CPU) + worker node (1 CPU), ~200 MB object store each; the driver is connected to both."""
    if os.environ.get("CI"):  # CI installs the ray extra (scripts/setup.sh --dev): a missing Ray is a failure there
        import ray
        import ray.data
    else:
        ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'price-bench[ray]')")
        pytest.importorskip("ray.data")
    from ray.cluster_utils import Cluster

    # Ray workers must import this checkout's price_bench, like the driver does.
    paths = [str(SRC)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    node = {"num_cpus": 1, "object_store_memory": 200 * 1024 * 1024, "include_dashboard": False}
    cluster = Cluster(initialize_head=True, head_node_args=node)
    cluster.add_node(**{k: v for k, v in node.items() if k != "include_dashboard"})
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        alive = [n for n in ray.nodes() if n["Alive"]]
        assert len(alive) == 2 and ray.cluster_resources().get("CPU") == 2, f"expected 2 nodes with 1 CPU each, got {alive}"
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
