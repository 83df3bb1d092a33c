"""The fault tests' shared kits, loaded once by path for every test file here.

``_data_kit.py`` (a tiny dataset, an in-process plugin, ``invoke`` of the CLI)
and ``_plugin_kit.py`` (installable fake plugins, a CLI in a subprocess) are
registered in ``sys.modules`` as ``price_bench_faults_data_kit`` and
``price_bench_faults_plugin_kit`` before pytest imports the test modules
(under ``--import-mode=importlib`` this folder is not on ``sys.path``), so a
test file needs one line: ``import price_bench_faults_data_kit as kit``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).parent
KITS = {"price_bench_faults_data_kit": "_data_kit.py", "price_bench_faults_plugin_kit": "_plugin_kit.py"}


def _load(name: str, filename: str) -> ModuleType:
    """``tests/faults/<filename>`` as the module ``name`` (loaded once)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HERE / filename)
        assert spec is not None and spec.loader is not None, f"cannot load {HERE / filename}"
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


for _name, _filename in KITS.items():
    _load(_name, _filename)
