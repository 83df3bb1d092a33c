"""Loading plugins: one PluginManager, entry points loaded one at a time.

Environment switches:

``PRICE_BENCH_LOAD_PLUGINS``
    Comma-separated distribution (or entry-point) names; only those
    ``price_bench`` entry points load (an empty string loads none). Unset: all load.
``PRICE_BENCH_STRICT_PLUGINS=1``
    Re-raise a plugin's import or registration error instead of recording it.

A plugin that fails to import, or whose ``register_commands`` or
``register_predictors`` raises, is unregistered (nothing it registered is
kept), recorded in :func:`plugin_failures` and shown as failed by
``price-bench plugins``; it never breaks the CLI or the other plugins. A
predictor id registered twice keeps its first registration and refuses the
second with a warning (:attr:`PredictorRegistry.warnings`); only running that
id fails (every command fails under ``PRICE_BENCH_STRICT_PLUGINS``). Hook
implementations with unknown names fail loudly (``check_pending``): an
entry-point plugin with one is unregistered and recorded as failed with a
"did you mean" hint (re-raised under ``PRICE_BENCH_STRICT_PLUGINS``); an
in-process plugin with one makes :func:`get_registry` raise
:class:`PluginError`.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pluggy

from price_bench.errors import PriceBenchError, first_line
from price_bench.plugins import hookspecs
from price_bench.predictors.registry import PredictorRegistry, PredictorSpec

if TYPE_CHECKING:
    import click

    from price_bench.predictors.contract import Predictor

ENTRY_POINT_GROUP = "price_bench"

pm = pluggy.PluginManager("price_bench")
pm.add_hookspecs(hookspecs)


@dataclass
class PluginInfo:
    """One plugin as ``price-bench plugins`` reports it."""

    name: str
    distribution: str
    version: str
    hooks: list[str]
    error: str | None = None


class PluginError(PriceBenchError, ValueError):
    """A plugin is malformed (e.g. a misnamed hook implementation); the message names it."""


_loaded = False
_failures: list[PluginInfo] = []
#: plugin name -> (distribution name, version) for entry-point plugins.
_origins: dict[str, tuple[str, str]] = {}


def _strict() -> bool:
    return os.environ.get("PRICE_BENCH_STRICT_PLUGINS", "").lower() in ("1", "true", "yes")


def _allowed_distributions() -> set[str] | None:
    raw = os.environ.get("PRICE_BENCH_LOAD_PLUGINS")
    if raw is None:
        return None
    return {_normalise(name) for name in raw.split(",") if name.strip()}


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def load_plugins() -> None:
    """Load every ``price_bench`` entry point once (idempotent).

    Skipped entirely under pytest (``sys._called_from_test``) unless
    ``PRICE_BENCH_LOAD_PLUGINS`` is set: tests register in-process plugins.
    ``PRICE_BENCH_LOAD_PLUGINS`` matches distribution names or entry-point names.
    """
    global _loaded
    if _loaded:
        return
    _loaded = True
    if getattr(sys, "_called_from_test", False) and "PRICE_BENCH_LOAD_PLUGINS" not in os.environ:
        return
    allowed = _allowed_distributions()
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist_name = ep.dist.name if ep.dist is not None else "?"
        version = ep.dist.version if ep.dist is not None else "?"
        if allowed is not None and _normalise(dist_name) not in allowed and _normalise(ep.name) not in allowed:
            continue
        if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
            continue
        try:
            module = ep.load()
            pm.register(module, name=ep.name)
        except Exception as exc:  # a broken plugin must not break the CLI
            if _strict():
                raise
            _failures.append(PluginInfo(ep.name, dist_name, version, [], _one_line(exc)))
            continue
        _origins[ep.name] = (dist_name, version)
        problem = unknown_hooks()
        if problem:
            pm.unregister(name=ep.name)
            _origins.pop(ep.name, None)
            if _strict():
                raise PluginError(f"plugin {ep.name} ({dist_name}): {problem}")
            _failures.append(PluginInfo(ep.name, dist_name, version, [], problem))


def _one_line(exc: BaseException) -> str:
    """``"ValueError: first line of the message"`` (just the type when the message is empty)."""
    return first_line(exc, typed=True)


def _plugin_failed(plugin: object, hook: str, exc: Exception) -> None:
    """``plugin``'s ``hook`` raised: record it like an import failure and unregister the plugin."""
    name = pm.get_name(plugin) or str(getattr(plugin, "__name__", "?"))
    distribution, version = _plugin_origin(plugin)
    failure = PluginInfo(name, distribution, version, [], f"{hook} failed: {_one_line(exc)}")
    if failure not in _failures:
        _failures.append(failure)
    pm.unregister(plugin)
    _origins.pop(name, None)


def register_commands(cli: click.Group) -> None:
    """Let every plugin add its commands to ``cli`` (the root click group).

    A plugin whose ``register_commands`` raises is recorded as failed and
    unregistered, and any command it added before raising is removed (a
    command it replaced is restored); the other plugins' commands are added.
    Under ``PRICE_BENCH_STRICT_PLUGINS`` the error is re-raised.
    """
    load_plugins()
    for impl in pm.hook.register_commands.get_hookimpls():
        before = dict(cli.commands)
        kwargs = {name: cli for name in impl.argnames if name == "cli"}
        try:
            impl.function(**kwargs)
        except Exception as exc:
            if _strict():
                raise
            cli.commands.clear()
            cli.commands.update(before)
            _plugin_failed(impl.plugin, "register_commands", exc)


def unknown_hooks(plugin: object = None) -> str | None:
    """A one-line complaint about a hook implementation that matches no hookspec, or None.

    Runs pluggy's ``check_pending`` over every registered plugin and names the
    culprit and the closest real hook. ``plugin`` is accepted for symmetry and
    unused: pluggy reports the first culprit it finds.
    """
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        culprit = exc.plugin
        name = pm.get_name(culprit) or getattr(culprit, "__name__", repr(culprit))
        return f"plugin {name}: {_describe_unknown(culprit) or str(exc).splitlines()[0]}"
    return None


def hook_names() -> list[str]:
    """The names of every hookspec, sorted."""
    return sorted(name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), "price_bench_spec"))


def _describe_unknown(plugin: object) -> str | None:
    known = hook_names()
    for name in dir(plugin):
        attr = getattr(plugin, name, None)
        if callable(attr) and hasattr(attr, "price_bench_impl") and name not in known:
            opts = attr.price_bench_impl or {}
            if opts.get("optionalhook"):
                continue
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            return f"hook implementation {name!r} matches no price-bench hook{hint}"
    return None


def plugin_failures() -> list[PluginInfo]:
    """Plugins whose import failed, with their errors."""
    load_plugins()
    return list(_failures)


def list_plugins() -> list[PluginInfo]:
    """Every loaded plugin (with its hooks and distribution) plus the failed ones.

    Builds the predictor registry first, so that a plugin whose
    ``register_predictors`` raises is listed as failed, not as healthy.
    """
    load_plugins()
    try:
        get_registry()
    except PluginError:
        pass  # a misnamed in-process hook: get_registry's callers report it
    infos = []
    for name, plugin in pm.list_name_plugin():
        distribution, version = _plugin_origin(plugin)
        hooks = sorted(caller.name for caller in (pm.get_hookcallers(plugin) or []))
        infos.append(PluginInfo(name=name, distribution=distribution, version=version, hooks=hooks))
    return sorted(infos, key=lambda i: i.name) + plugin_failures()


def _plugin_origin(plugin: object) -> tuple[str, str]:
    """(distribution, version) of a plugin; in-process plugins are named ``<name> (in-process)``."""
    name = pm.get_name(plugin)
    if name in _origins:
        return _origins[name]
    for candidate, dist in pm.list_plugin_distinfo():
        if candidate is plugin:
            return dist.metadata["Name"], dist.version
    name = name or getattr(plugin, "__name__", repr(plugin))
    return f"{name} (in-process)", str(getattr(plugin, "__version__", "0"))


def get_registry() -> PredictorRegistry:
    """Collect every plugin's predictors into a fresh registry.

    Cheap: modules are already imported and lazy specs stay unimported. A
    plugin's registrations are kept only when its ``register_predictors``
    returns: one that raises is recorded as failed and unregistered (re-raised
    under ``PRICE_BENCH_STRICT_PLUGINS``). A duplicate id keeps the first
    registration and refuses the second with a warning in the registry's
    ``warnings``; only that id then fails to load. Under the strict switch a
    duplicate raises :class:`~price_bench.predictors.registry.DuplicatePredictorError`.
    """
    load_plugins()
    problem = unknown_hooks()
    if problem:
        raise PluginError(problem)
    registry = PredictorRegistry(strict=_strict())
    for impl in pm.hook.register_predictors.get_hookimpls():
        origin, version = _plugin_origin(impl.plugin)

        def register(predictor: type[Predictor] | PredictorSpec, _origin: str = origin, _version: str = version) -> None:
            spec = predictor if isinstance(predictor, PredictorSpec) else PredictorSpec(
                id=predictor.id, factory=predictor, description=predictor.description
            )
            spec.origin, spec.plugin_version = _origin, _version
            registry.add(spec)

        kwargs = {name: register for name in impl.argnames if name == "register"}
        before = registry.snapshot()
        try:
            impl.function(**kwargs)
        except Exception as exc:
            if _strict():
                raise
            registry.restore(before)
            _plugin_failed(impl.plugin, "register_predictors", exc)
    return registry
