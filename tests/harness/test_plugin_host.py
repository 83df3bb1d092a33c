"""The plugin host: real entry points from fake installed distributions."""

from __future__ import annotations

import importlib
import sys
import textwrap

import pytest
from click.testing import CliRunner

from price_bench import Predictor, hookimpl
from price_bench.plugins import manager
from price_bench.predictors.registry import DuplicatePredictorError

GOOD = '''
from price_bench import Predictor, Prediction, hookimpl

class Good(Predictor):
    id = "fake-good"
    description = "from an installed distribution"
    def predict(self, items):
        return [Prediction(raw=1.0) for _ in items]

@hookimpl
def register_predictors(register):
    register(Good)
'''

BROKEN = '''
import price_bench_dependency_that_is_not_installed
'''

MISNAMED = '''
from price_bench import hookimpl

@hookimpl
def register_predictor(register):
    pass
'''


@pytest.fixture
def site(tmp_path, monkeypatch):
    """Install fake distributions (dist-info + module) into a folder on sys.path."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    saved = (manager._loaded, list(manager._failures), dict(manager._origins))
    manager._loaded = False
    manager._failures.clear()
    added: list[str] = []

    def install(dist: str, module: str, source: str, version: str = "1.2.3") -> None:
        info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[price_bench]\n{module} = {module}\n")
        (root / f"{module}.py").write_text(textwrap.dedent(source))
        added.append(module)
        importlib.invalidate_caches()

    yield install
    for name in added:
        if manager.pm.get_plugin(name) is not None:
            manager.pm.unregister(name=name)
        sys.modules.pop(name, None)
    manager._loaded, manager._failures[:], manager._origins = saved[0], saved[1], saved[2]


def test_plugin_failing_to_import_is_listed_with_its_error(site, monkeypatch):
    site("fake-good", "fake_good", GOOD)
    site("fake-broken", "fake_broken", BROKEN)
    monkeypatch.setenv("PRICE_BENCH_LOAD_PLUGINS", "fake-good,fake-broken")
    registry = manager.get_registry()
    assert "fake-good" in registry
    spec = registry.get("fake-good")
    assert (spec.origin, spec.plugin_version) == ("fake-good", "1.2.3")
    infos = {info.name: info for info in manager.list_plugins()}
    assert infos["fake_good"].hooks == ["register_predictors"] and infos["fake_good"].error is None
    assert infos["fake_broken"].distribution == "fake-broken"
    assert "ModuleNotFoundError" in infos["fake_broken"].error
    assert "price_bench_dependency_that_is_not_installed" in infos["fake_broken"].error


def test_cli_survives_a_broken_plugin(site, monkeypatch):
    from price_bench.cli.main import get_cli

    site("fake-broken", "fake_broken", BROKEN)
    monkeypatch.setenv("PRICE_BENCH_LOAD_PLUGINS", "fake-broken")
    runner = CliRunner()
    result = runner.invoke(get_cli(), ["plugins"])
    assert result.exit_code == 0, result.output
    assert "FAILED" in result.output and "fake_broken" in result.output
    listed = runner.invoke(get_cli(), ["list"])
    assert listed.exit_code == 0
    assert "warning: plugin fake_broken (fake-broken 1.2.3) not loaded: ModuleNotFoundError" in listed.output


def test_strict_switch_reraises(site, monkeypatch):
    site("fake-broken", "fake_broken", BROKEN)
    monkeypatch.setenv("PRICE_BENCH_LOAD_PLUGINS", "fake-broken")
    monkeypatch.setenv("PRICE_BENCH_STRICT_PLUGINS", "1")
    with pytest.raises(ModuleNotFoundError):
        manager.load_plugins()


def test_allow_list_limits_what_loads(site, monkeypatch):
    site("fake-good", "fake_good", GOOD)
    site("fake-broken", "fake_broken", BROKEN)
    monkeypatch.setenv("PRICE_BENCH_LOAD_PLUGINS", "fake-good")
    manager.load_plugins()
    assert manager.pm.get_plugin("fake_good") is not None
    assert "fake_broken" not in sys.modules, "a plugin outside the allow-list is never imported"
    assert manager.plugin_failures() == []


def test_empty_allow_list_loads_nothing(site, monkeypatch):
    site("fake-good", "fake_good", GOOD)
    monkeypatch.setenv("PRICE_BENCH_LOAD_PLUGINS", "")
    manager.load_plugins()
    assert manager.pm.get_plugin("fake_good") is None


def test_misnamed_hook_implementation_fails_loudly(site, monkeypatch):
    site("fake-misnamed", "fake_misnamed", MISNAMED)
    monkeypatch.setenv("PRICE_BENCH_LOAD_PLUGINS", "fake-misnamed")
    manager.load_plugins()
    assert manager.pm.get_plugin("fake_misnamed") is None, "a plugin with an unknown hook is unregistered"
    [failure] = manager.plugin_failures()
    assert "'register_predictor' matches no price-bench hook; did you mean 'register_predictors'?" in failure.error


def test_misnamed_hook_in_strict_mode_raises(site, monkeypatch):
    site("fake-misnamed", "fake_misnamed", MISNAMED)
    monkeypatch.setenv("PRICE_BENCH_LOAD_PLUGINS", "fake-misnamed")
    monkeypatch.setenv("PRICE_BENCH_STRICT_PLUGINS", "1")
    with pytest.raises(manager.PluginError, match="did you mean 'register_predictors'"):
        manager.load_plugins()


def test_misnamed_in_process_hook_raises(register_plugin):
    class Typo:
        @hookimpl
        def register_predictor(self, register):
            pass

    register_plugin(Typo(), name="typo-plugin")
    with pytest.raises(manager.PluginError, match="typo-plugin.*register_predictor"):
        manager.get_registry()


class _Same(Predictor):
    id = "same-id"

    def predict(self, items):
        return []


class _PluginA:
    @hookimpl
    def register_predictors(self, register):
        register(_Same)


class _PluginB(_PluginA):
    pass


def test_duplicate_id_keeps_the_first_and_names_both_origins(register_plugin):
    register_plugin(_PluginA(), name="first-plugin")
    register_plugin(_PluginB(), name="second-plugin")
    registry = manager.get_registry()
    [warning] = registry.warnings
    assert "'same-id'" in warning and "first-plugin" in warning and "second-plugin" in warning
    assert registry.get("same-id").origin == "first-plugin (in-process)", "the first registration is kept"
    with pytest.raises(DuplicatePredictorError, match="registered twice"):
        registry.get("same-id").load()


def test_duplicate_id_raises_under_the_strict_switch(register_plugin, monkeypatch):
    monkeypatch.setenv("PRICE_BENCH_STRICT_PLUGINS", "1")
    register_plugin(_PluginA(), name="first-plugin")
    register_plugin(_PluginB(), name="second-plugin")
    with pytest.raises(DuplicatePredictorError) as info:
        manager.get_registry()
    message = str(info.value)
    assert "'same-id'" in message and "first-plugin" in message and "second-plugin" in message


def test_duplicate_id_is_a_one_line_cli_warning(register_plugin):
    from price_bench.cli.main import get_cli

    register_plugin(_PluginA(), name="first-plugin")
    register_plugin(_PluginB(), name="second-plugin")
    result = CliRunner().invoke(get_cli(), ["list"])
    assert result.exit_code == 0
    assert "warning: predictor id 'same-id' is registered twice" in result.output
    assert "Traceback" not in result.output
