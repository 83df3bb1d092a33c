"""Shared loader for the red-team fault tests: the data kit (imported by path, like the other fault tests)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def data_kit():
    """``tests/faults/_data_kit.py`` as a module (loaded once)."""
    name = "price_bench_faults_data_kit"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("_data_kit.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]
