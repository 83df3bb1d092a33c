"""Bundles: a complete run's fitted predictor, self-describing and checksummed.

Layout of a bundle folder::

    bundle.json      the manifest (:class:`BundleManifest`)
    artefacts/       a copy of the run's work folder (what ``fit`` saved, ``fit.json``, ``info.json``)

The manifest names the predictor (id, description, config with secrets
scrubbed, config hash, predictor version, plugin distribution and version),
the run (id, seed, limit, git commit), the dataset (name, fingerprint,
recipe), the run's metrics with their 95% CIs and breakdowns, the fallback
price (the train median, scored for unparseable answers exactly as the
harness does), the recipe's maximum text length, an offline reference for
drift checks (category counts, deciles of text length and of predicted
prices; never product text) and the sha256 and size of every file under
``artefacts/``.

:func:`verify_bundle` checks all of it before anything is unpickled: the
manifest parses, every listed file exists with its size and sha256, no file
is unlisted and nothing is a symlink. A manifest's own sha256 (the bundle
*digest*, printed by ``price-bench bundle``) can be pinned with ``price-bench
serve --expect-digest``: checksums catch corruption and partial copies; the
pinned digest also catches a bundle rebuilt by someone else.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from price_bench.results.schema import BreakdownRow, DatasetRef, MetricValue, PredictorInfo
from price_bench.serve import ServeError

if TYPE_CHECKING:
    from price_bench.predictors.contract import Predictor, PredictorConfig
    from price_bench.results.schema import RunRecord

BUNDLE_FORMAT = 1
MANIFEST = "bundle.json"
ARTEFACTS = "artefacts"
_SAFE_PART = re.compile(r"^[A-Za-z0-9_+\-][A-Za-z0-9._+\-]*$")
_HASH_CHUNK = 1 << 20


class BundleError(ServeError):
    """A bundle is missing, malformed or fails its checksums (message names the file)."""


class FileEntry(BaseModel):
    """One artefact file: its sha256 (hex) and size in bytes."""

    model_config = ConfigDict(extra="forbid")

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class RunInfo(BaseModel):
    """The run whose fitted predictor the bundle holds."""

    run_id: str
    seed: int = 0
    limit: int | None = None
    n_items: int
    n_total: int
    leaderboard_eligible: bool
    git_commit: str | None = None
    finished_at: str


class FitInfo(BaseModel):
    """How to rebuild the predictor: its fit-config hash (names the work folder it came from)."""

    fit_config_hash: str
    workdir: str = Field(description="The work folder the artefacts were copied from (informational).")


class Histogram(BaseModel):
    """A reference distribution: bin edges (the offline deciles) and the offline share in each bin.

    ``len(edges) + 1`` bins: below the first edge, between consecutive
    edges, at or above the last (``numpy.searchsorted(edges, x, side="right")``).
    """

    edges: list[float]
    proportions: list[float]


class OfflineReference(BaseModel):
    """What the offline test items looked like, for drift checks (no product text)."""

    n_items: int = 0
    category_counts: dict[str, int] = Field(default_factory=dict)
    text_length: Histogram | None = Field(default=None, description="Test texts' length in characters.")
    predicted_price: Histogram | None = Field(default=None, description="The run's scored guesses.")


class BundleManifest(BaseModel):
    """The contents of ``bundle.json``."""

    format: int
    created_at: str
    price_bench_version: str
    predictor: PredictorInfo
    fit: FitInfo
    run: RunInfo
    dataset: DatasetRef
    metrics: dict[str, MetricValue]
    breakdowns: dict[str, dict[str, BreakdownRow]] = Field(default_factory=dict)
    fallback_price: float = Field(gt=0, description="Train median: the price returned for an unparseable or failed answer.")
    max_text_chars: int = Field(gt=0, description="The recipe's maximum text length; longer texts are refused.")
    reference: OfflineReference = Field(default_factory=OfflineReference)
    files: dict[str, FileEntry]


@dataclass
class Bundle:
    """A verified bundle folder."""

    path: Path
    manifest: BundleManifest
    #: sha256 (hex) of ``bundle.json``'s bytes: pin it with ``serve --expect-digest``.
    digest: str

    @property
    def artefacts(self) -> Path:
        return self.path / ARTEFACTS

    def describe(self) -> dict[str, Any]:
        """The manifest as JSON plus the digest (what ``GET /v1/model`` answers)."""
        return {"digest": self.digest, **self.manifest.model_dump(mode="json")}


# -- building ---------------------------------------------------------------------------------------


def build_bundle(run: str, out: Path, *, results_dir: Path | None = None, home: Path | None = None, force: bool = False) -> Bundle:
    """Bundle the fitted predictor of the complete run ``run`` (id, id prefix or record path) into ``out``.

    The folder is assembled next to ``out`` and renamed into place, so a
    half-written bundle never exists. Raises :class:`BundleError`.
    """
    from price_bench.results.store import default_results_dir, find_run

    record_path, record = find_run(run, Path(results_dir) if results_dir else default_results_dir())
    if record.status != "complete":
        raise BundleError(f"run {record.run_id} is {record.status}, not complete: only a complete run can be bundled")
    if record.fallback_price is None or record.fallback_price <= 0:
        raise BundleError(f"{record_path}: the record has no fallback price (train median)")
    cls, config = _predictor_for(record.predictor)
    workdir = _workdir_of(record, cls, config, home)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise BundleError(f"{out} exists and is not empty (pass --force to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        files = _copy_artefacts(workdir, tmp / ARTEFACTS)
        manifest = BundleManifest(
            format=BUNDLE_FORMAT,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            price_bench_version=_version(),
            predictor=record.predictor,
            fit=FitInfo(fit_config_hash=_fit_hash(config), workdir=str(workdir)),
            run=RunInfo(
                run_id=record.run_id,
                seed=record.seed,
                limit=record.limit,
                n_items=record.n_items,
                n_total=record.n_total,
                leaderboard_eligible=record.is_leaderboard_eligible,
                git_commit=record.git_commit,
                finished_at=record.finished_at,
            ),
            dataset=record.dataset,
            metrics=record.metrics,
            breakdowns=record.breakdowns,
            fallback_price=record.fallback_price,
            max_text_chars=_max_text_chars(record.dataset.recipe),
            reference=_reference(record_path, record, home),
            files=files,
        )
        text = manifest.model_dump_json(indent=2) + "\n"
        (tmp / MANIFEST).write_text(text, encoding="utf-8")
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Bundle(out, manifest, hashlib.sha256(text.encode("utf-8")).hexdigest())


def bundle_for_run(run: str, *, results_dir: Path | None = None, home: Path | None = None) -> Bundle:
    """The bundle of ``run`` under ``<home>/bundles/<run_id>`` (built on first use, verified every time)."""
    from price_bench.data.dataset import data_home
    from price_bench.results.store import default_results_dir, find_run

    _, record = find_run(run, Path(results_dir) if results_dir else default_results_dir())
    folder = (home or data_home()) / "bundles" / record.run_id
    if (folder / MANIFEST).is_file():
        return verify_bundle(folder)
    return build_bundle(record.run_id, folder, results_dir=results_dir, home=home, force=True)


def _version() -> str:
    from price_bench import __version__

    return __version__


def _predictor_for(info: PredictorInfo) -> tuple[type[Predictor], PredictorConfig]:
    """The installed predictor class for ``info`` and its config, refusing other versions."""
    from price_bench.harness.runner import one_line
    from price_bench.plugins.manager import get_registry
    from price_bench.predictors.registry import UnknownPredictorError

    try:
        spec = get_registry().get(info.id)
    except UnknownPredictorError as exc:
        raise BundleError(f"predictor {info.id!r} is not installed here ({exc}); install {info.plugin_distribution} {info.plugin_version}") from None
    try:
        cls = spec.load()
    except Exception as exc:
        raise BundleError(f"could not load predictor {info.id}: {one_line(exc)}") from None
    installed = (spec.plugin_version, str(cls.version))
    if installed != (info.plugin_version, info.predictor_version):
        raise BundleError(
            f"predictor {info.id} was fitted by {info.plugin_distribution} {info.plugin_version} (predictor v{info.predictor_version}); "
            f"installed is {spec.origin} {spec.plugin_version} (v{cls.version}): install that version or bundle a new run"
        )
    return cls, config_from(cls, info.config)


def config_from(cls: type[Predictor], scrubbed: dict[str, Any]) -> PredictorConfig:
    """Rebuild a predictor config from a record's scrubbed config (``***`` secrets come from the environment)."""
    from price_bench.harness.overrides import REDACTED

    values = {k: v for k, v in scrubbed.items() if v != REDACTED}
    try:
        return cls.Config.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "config"
        raise BundleError(f"{cls.id}: the recorded config does not fit the installed predictor: {where!r}: {first.get('msg', 'invalid')}") from None


def _fit_hash(config: PredictorConfig) -> str:
    from price_bench.harness.overrides import config_hash

    return config_hash(config, roles=("fit",))


def _workdir_of(record: RunRecord, cls: type[Predictor], config: PredictorConfig, home: Path | None) -> Path:
    from price_bench.harness.workdir import read_marker, workdir_for

    p = record.predictor
    workdir = workdir_for(p.id, _fit_hash(config), p.plugin_version, p.predictor_version, record.dataset.fingerprint, record.seed, home,
                          code_digest=p.code_digest or "")
    if read_marker(workdir) is None:
        raise BundleError(
            f"run {record.run_id}: its work folder {workdir} holds no finished fit "
            f"(removed, or made under another PRICE_BENCH_HOME); rerun `price-bench run {p.id} --dataset {record.dataset.name}`"
        )
    return workdir


def _copy_artefacts(workdir: Path, target: Path) -> dict[str, FileEntry]:
    """Copy every file of ``workdir`` (hidden temporary files excepted) and checksum the copies."""
    files: dict[str, FileEntry] = {}
    target.mkdir(parents=True)
    for root, dirs, names in os.walk(workdir, followlinks=False):
        root_path = Path(root)
        for name in dirs:
            if (root_path / name).is_symlink():
                raise BundleError(f"{root_path / name}: a symlinked folder in the work folder cannot be bundled")
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue  # atomic-write temporaries (".model.joblib.123.tmp")
            source = root_path / name
            rel = source.relative_to(workdir).as_posix()
            _check_relative(rel, where=str(source))
            dest = target / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)  # follows a symlinked file: the bundle holds real bytes
            files[rel] = FileEntry(sha256=sha256_file(dest), size=dest.stat().st_size)
    if not files:
        raise BundleError(f"{workdir}: the work folder is empty")
    return files


def _max_text_chars(recipe_id: str | None) -> int:
    from price_bench.data.curation import RECIPES, Recipe

    recipe = RECIPES.get(recipe_id or "", None)
    return (recipe or Recipe()).max_chars


def _reference(record_path: Path, record: RunRecord, home: Path | None) -> OfflineReference:
    """Category counts, text-length and predicted-price deciles of the run's scored items."""
    from price_bench.results.store import ResultError, read_predictions
    from price_bench.serve.monitor import reference_histogram

    counts = {label: row.n for label, row in record.breakdowns.get("category", {}).items()}
    try:
        guesses = [row.guess for row in read_predictions(record_path, record)]
    except (OSError, ResultError):
        guesses = []
    lengths = _test_text_lengths(record, home)
    return OfflineReference(
        n_items=record.n_items,
        category_counts=counts,
        text_length=Histogram(**reference_histogram(lengths)) if lengths else None,
        predicted_price=Histogram(**reference_histogram(guesses)) if guesses else None,
    )


def _test_text_lengths(record: RunRecord, home: Path | None) -> list[int]:
    """Text lengths of the run's test items, when the very same dataset is still on disk."""
    from price_bench.data.dataset import DatasetError, open_dataset

    try:
        dataset = open_dataset(record.dataset.name, home=home)
        if dataset.fingerprint != record.dataset.fingerprint:
            return []
        items = dataset.test[: record.limit] if record.limit else dataset.test
    except (DatasetError, OSError, KeyError, ValueError):
        return []
    return [len(item.text) for item in items]


# -- verifying ----------------------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _check_relative(rel: str, where: str) -> None:
    parts = rel.split("/")
    if rel.startswith("/") or not all(_SAFE_PART.match(part) and part not in (".", "..") for part in parts):
        raise BundleError(f"{where}: file name {rel!r} is not a plain relative path")


def verify_bundle(path: Path, *, expect_digest: str | None = None) -> Bundle:
    """Read and verify the bundle at ``path``: manifest, every checksum, no extra or symlinked file.

    Raises :class:`BundleError` naming the first problem.
    """
    path = Path(path)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file() or manifest_path.is_symlink():
        raise BundleError(f"{path}: not a bundle (no {MANIFEST}; make one with `price-bench bundle RUN --out DIR`)")
    raw = manifest_path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if expect_digest is not None and digest != expect_digest.strip().lower():
        raise BundleError(f"{manifest_path}: digest {digest[:16]}… is not the expected {expect_digest[:16]}…")
    try:
        data = json.loads(raw)
        fmt = data.get("format") if isinstance(data, dict) else None
        if fmt != BUNDLE_FORMAT:
            raise BundleError(f"{manifest_path}: bundle format {fmt!r} is not supported (expected {BUNDLE_FORMAT})")
        manifest = BundleManifest.model_validate(data)
    except ValueError as exc:  # JSONDecodeError and ValidationError are ValueErrors
        if isinstance(exc, ValidationError):
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "manifest"
            raise BundleError(f"{manifest_path}: field {where!r}: {first.get('msg', 'invalid')}") from None
        raise BundleError(f"{manifest_path}: not valid JSON: {str(exc).splitlines()[0]}") from None
    _verify_files(path / ARTEFACTS, manifest.files)
    return Bundle(path, manifest, digest)


def _verify_files(artefacts: Path, files: dict[str, FileEntry]) -> None:
    if not artefacts.is_dir() or artefacts.is_symlink():
        raise BundleError(f"{artefacts}: the artefacts folder is missing")
    for rel in files:
        _check_relative(rel, where=str(artefacts.parent / MANIFEST))
    found: set[str] = set()
    for root, dirs, names in os.walk(artefacts, followlinks=False):
        root_path = Path(root)
        for name in dirs + names:
            child = root_path / name
            if child.is_symlink():
                raise BundleError(f"{child}: symlinks are not allowed in a bundle")
        for name in names:
            found.add((root_path / name).relative_to(artefacts).as_posix())
    unlisted = sorted(found - set(files))
    if unlisted:
        raise BundleError(f"{artefacts / unlisted[0]}: file is not listed in {MANIFEST}")
    for rel, entry in files.items():
        file = artefacts / rel
        if rel not in found:
            raise BundleError(f"{file}: listed in {MANIFEST} but missing")
        size = file.stat().st_size
        if size != entry.size:
            raise BundleError(f"{file}: size {size} does not match the manifest's {entry.size} (corrupt or tampered)")
        if sha256_file(file) != entry.sha256:
            raise BundleError(f"{file}: sha256 does not match the manifest (corrupt or tampered)")


# -- loading ------------------------------------------------------------------------------------------


def check_loadable(bundle: Bundle) -> tuple[type[Predictor], PredictorConfig]:
    """``(class, config)`` of the bundle's predictor when it can run here (installed, same versions, requirements met)."""
    info = bundle.manifest.predictor
    cls, config = _predictor_for(info)
    reason = cls.skip_reason(config)
    if reason:
        raise BundleError(f"{info.id} cannot run here: {reason}")
    return cls, config


def load_predictor(bundle: Bundle) -> Predictor:
    """Instantiate the bundle's predictor with its config and ``load`` the artefacts; returns the predictor.

    Raises :class:`BundleError` when the installed plugin differs, the
    predictor cannot run here, or ``load`` declines the artefacts.
    """
    from price_bench.harness.runner import one_line

    info = bundle.manifest.predictor
    cls, config = check_loadable(bundle)
    try:
        predictor = cls(config, seed=bundle.manifest.run.seed)
        loaded = predictor.load(bundle.artefacts)
    except Exception as exc:
        raise BundleError(f"{bundle.path}: {info.id} failed to load its artefacts: {one_line(exc)}") from None
    if not loaded:
        raise BundleError(f"{bundle.path}: {info.id} declined the bundle's artefacts (made by another config or version?)")
    return predictor
