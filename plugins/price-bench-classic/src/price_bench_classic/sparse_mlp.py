"""``sparse-mlp``: the Mercari Price Suggestion winners' recipe in PyTorch.

Sparse TF-IDF inputs (word 1–2-grams, character n-grams, brand crosses,
parsed quantities: :mod:`price_bench_classic.sparse_features`) go into a
small MLP whose first layer is sparse (``embedding_bag`` in "sum" mode with
the TF-IDF values as per-sample weights, i.e. a sparse matrix product), then
dense layers (256-64-32 by default). The first layer's weight is trained with
a lazy Adam that only gathers and updates the rows a batch uses
(:class:`LazyAdamRows`; torch's ``SparseAdam`` was about 8x slower per step
here). It is trained on the standardised log price with the Huber loss for a
few epochs, the batch size doubling each epoch; optionally with a second head that classifies the price into
quantile bins ("regression via classification"), whose expected value is
averaged with the regression output. ``seeds`` members are trained and
their log prices averaged (bagging); with ``binary="alternate"`` every
second member sees binarised inputs (all non-zeros set to 1), as in the
winning solution.

Training is deterministic: a fixed seed per member, fixed shuffles, torch's
deterministic algorithms and a fixed number of CPU threads, so the same data,
config and seed give byte-identical predictions. On a CPU shared with other
jobs, set ``OMP_WAIT_POLICY=PASSIVE`` (or ``threads=1``): torch's OpenMP
threads otherwise spin while they wait for each other.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from price_bench import Item, Requirement
from price_bench_classic.base import ClassicPredictor, ItemRegressor
from price_bench_classic.sparse_features import SparseInputConfig, SparseInputEncoder

PREDICT_BATCH = 4096


@contextmanager
def torch_determinism(threads: int) -> Iterator[Any]:
    """Deterministic torch kernels on ``threads`` CPU threads for the duration (restored afterwards)."""
    import torch

    old_threads, old_deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield torch
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_deterministic)


def _build_net(n_features: int, hidden: Sequence[int], n_bins: int) -> Any:
    """The network: sparse first layer, dense ReLU layers, a price head and an optional bin head.

    The first layer's weight (``n_features`` x ``hidden[0]``) is a plain tensor
    outside autograd: each training step gathers the rows its batch uses
    (:class:`LazyAdamRows`), so a step costs what the batch touches, not the
    whole vocabulary.
    """
    import torch
    from torch import nn

    class SparseMLPNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            bound = float(np.sqrt(6.0 / (n_features + hidden[0])))  # Glorot, as Keras' Dense
            self.register_buffer("first_weight", torch.empty(n_features, hidden[0]).uniform_(-bound, bound))
            self.first_bias = nn.Parameter(torch.zeros(hidden[0]))
            layers: list[nn.Module] = []
            for width_in, width_out in zip(hidden, hidden[1:]):
                layers += [nn.Linear(width_in, width_out), nn.ReLU()]
            self.body = nn.Sequential(*layers)
            self.price = nn.Linear(hidden[-1], 1)
            self.bins = nn.Linear(hidden[-1], n_bins) if n_bins else None

        def forward(self, indices: Any, offsets: Any, weights: Any, rows: Any = None) -> tuple[Any, Any]:
            """Sum of weighted first-layer rows per item (``rows``: a gathered weight slice that ``indices`` point into)."""
            table: Any = self.first_weight if rows is None else rows
            first = nn.functional.embedding_bag(indices, table, offsets, mode="sum", per_sample_weights=weights)
            h = self.body(torch.relu(first + self.first_bias))
            return self.price(h).squeeze(-1), (self.bins(h) if self.bins is not None else None)

    return SparseMLPNet()


class LazyAdamRows:
    """Adam on the rows of a large embedding table that a batch touches (TensorFlow's "lazy" Adam).

    ``gather(indices)`` returns the batch's unique rows as a leaf tensor that
    requires grad, and the indices remapped into it; after ``backward``,
    ``step()`` applies Adam to those rows only (moments of untouched rows are
    not decayed; the bias correction uses the global step, as TensorFlow's
    ``LazyAdamOptimizer``), so a step costs what the batch touches.
    """

    def __init__(self, table: Any, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        import torch

        self.table, self.lr, self.betas, self.eps = table, lr, betas, eps
        self.exp_avg = torch.zeros_like(table)
        self.exp_avg_sq = torch.zeros_like(table)
        self.t = 0

    def gather(self, indices: np.ndarray) -> tuple[Any, Any]:
        import torch

        unique, local = np.unique(indices, return_inverse=True)
        self._rows = torch.from_numpy(unique.astype(np.int64))
        self._slice = self.table.index_select(0, self._rows).requires_grad_(True)
        return self._slice, torch.from_numpy(local.reshape(-1).astype(np.int64))

    def step(self) -> None:
        import torch

        rows, grad = self._rows, self._slice.grad
        beta1, beta2 = self.betas
        self.t += 1
        step_size = self.lr * math.sqrt(1 - beta2**self.t) / (1 - beta1**self.t)
        with torch.no_grad():
            m = self.exp_avg.index_select(0, rows).mul_(beta1).add_(grad, alpha=1 - beta1)
            v = self.exp_avg_sq.index_select(0, rows).mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            self.exp_avg.index_copy_(0, rows, m)
            self.exp_avg_sq.index_copy_(0, rows, v)
            self.table.index_add_(0, rows, m.div_(v.sqrt_().add_(self.eps)), alpha=-step_size)
        self._slice = None


def _batch(matrix: Any, rows: np.ndarray | slice) -> tuple[Any, Any, Any]:
    """EmbeddingBag inputs (indices, offsets, per-sample weights) for ``matrix[rows]`` (CSR)."""
    import torch

    part = matrix[rows]
    return (
        part.indices,
        torch.from_numpy(part.indptr[:-1].astype(np.int64)),
        torch.from_numpy(part.data.astype(np.float32)),
    )


class SparseMLPModel(ItemRegressor):
    """Bagged sparse MLPs on the standardised log price (see the module docstring)."""

    config: SparseMLPConfig

    # -- fitting ----------------------------------------------------------------------

    def _fit(self, items: Sequence[Item], y: np.ndarray) -> None:
        c = self.config
        self.encoder = SparseInputEncoder(c)
        matrix = self.encoder.fit_transform(items)
        self.n_features = matrix.shape[1]
        self.y_mean, self.y_std = float(y.mean()), float(y.std() or 1.0)
        target = ((y - self.y_mean) / self.y_std).astype(np.float32)
        self.bin_centres, bin_index = _bins(target, c.bins)
        loss_weights = _dollar_weights(y, c.dollar_weight)
        self.members: list[dict[str, np.ndarray]] = []
        self.member_binary: list[bool] = []
        with torch_determinism(c.threads):
            for member in range(c.seeds):
                binary = c.binary == "on" or (c.binary == "alternate" and member % 2 == 1)
                inputs = _binarised(matrix) if binary else matrix
                self.members.append(self._train_member(inputs, target, bin_index, seed=self.seed * 1000 + member,
                                                       loss_weights=loss_weights))
                self.member_binary.append(binary)

    def _train_member(
        self, matrix: Any, target: np.ndarray, bin_index: np.ndarray | None, *, seed: int, loss_weights: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        import torch
        from torch import nn

        c = self.config
        torch.manual_seed(seed)
        net = _build_net(matrix.shape[1], c.hidden, c.bins)
        sparse_opt = LazyAdamRows(net.first_weight, lr=c.learning_rate)
        dense_opt = torch.optim.Adam(net.parameters(), lr=c.learning_rate, weight_decay=c.weight_decay)
        huber = nn.HuberLoss(delta=c.huber_delta, reduction="mean" if loss_weights is None else "none")
        item_weights: Any = torch.from_numpy(loss_weights.astype(np.float32)) if loss_weights is not None else None
        cross_entropy = nn.CrossEntropyLoss()
        y = torch.from_numpy(target)
        bins: Any = torch.from_numpy(bin_index) if bin_index is not None else None
        rng = np.random.default_rng(seed)
        n = matrix.shape[0]
        net.train()
        for epoch in range(c.epochs):
            size = min(c.batch_size * 2**epoch, n)
            order = rng.permutation(n)
            for start in range(0, n, size):
                rows = np.sort(order[start : start + size])
                indices, offsets, weights = _batch(matrix, rows)
                table_rows, local = sparse_opt.gather(indices)
                price, logits = net(local, offsets, weights, rows=table_rows)
                index = torch.from_numpy(rows)
                loss = huber(price, y[index])
                if item_weights is not None:
                    loss = (loss * item_weights[index]).mean()
                if logits is not None:
                    loss = loss + c.bin_weight * cross_entropy(logits, bins[index])
                dense_opt.zero_grad(set_to_none=True)
                loss.backward()
                sparse_opt.step()
                dense_opt.step()
        return {name: tensor.detach().numpy().copy() for name, tensor in net.state_dict().items()}

    # -- predicting -------------------------------------------------------------------

    def _predict(self, items: Sequence[Item]) -> np.ndarray:
        import torch

        matrix = self.encoder.transform(items)
        out = np.zeros(matrix.shape[0], dtype=np.float64)
        with torch_determinism(self.config.threads), torch.no_grad():
            for state, binary in zip(self.members, self.member_binary):
                net = _build_net(self.n_features, self.config.hidden, self.config.bins)
                net.load_state_dict({name: torch.from_numpy(value) for name, value in state.items()})
                net.eval()
                inputs = _binarised(matrix) if binary else matrix
                for start in range(0, matrix.shape[0], PREDICT_BATCH):
                    indices, offsets, weights = _batch(inputs, slice(start, start + PREDICT_BATCH))
                    price, logits = net(torch.from_numpy(indices.astype(np.int64)), offsets, weights)
                    guess = price.numpy().astype(np.float64)
                    if logits is not None:
                        expected = torch.softmax(logits, dim=1).numpy().astype(np.float64) @ self.bin_centres
                        guess = 0.5 * (guess + expected)
                    out[start : start + len(guess)] += guess
        return (out / len(self.members)) * self.y_std + self.y_mean

    def info(self) -> dict[str, Any]:
        return {**super().info(), "input_features": int(self.n_features), "members": len(self.members)}


def _dollar_weights(log_price: np.ndarray, exponent: float) -> np.ndarray | None:
    """Per-item loss weights ``(price / median price) ** exponent``, scaled to mean 1 (None for exponent 0).

    The Error is in dollars: a log-price miss of the same size costs about
    ``price`` dollars, so ``exponent=1`` weighs items as the Error does;
    values between 0 and 1 trade RMSLE for dollars.
    """
    if not exponent:
        return None
    weights = np.exp(exponent * (log_price - np.median(log_price)))
    return np.asarray(weights / weights.mean(), dtype=np.float64)


def _binarised(matrix: Any) -> Any:
    """A copy of ``matrix`` with every stored non-zero set to 1."""
    out = matrix.copy()
    out.data = (out.data != 0).astype(np.float32)
    return out


def _bins(target: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Quantile bin edges of the (standardised) target: each bin's mean value and each item's bin."""
    if not n_bins:
        return np.zeros(0), None
    edges = np.unique(np.quantile(target, np.linspace(0, 1, n_bins + 1)[1:-1]))
    index = np.searchsorted(edges, target, side="right")
    centres = np.array([target[index == b].mean() if np.any(index == b) else 0.0 for b in range(n_bins)])
    return centres, index.astype(np.int64)


class SparseMLPConfig(SparseInputConfig):
    """Configuration of ``sparse-mlp`` (every field changes the fit): the input blocks' fields and these."""

    #: Widths of the layers: the first is the sparse layer, then dense ReLU layers.
    hidden: list[int] = Field(default_factory=lambda: [256, 64, 32])
    epochs: int = Field(3, ge=1, le=50)
    #: Batch size of the first epoch; it doubles every epoch.
    batch_size: int = Field(64, ge=1, le=1 << 20)
    learning_rate: float = Field(3e-3, gt=0, le=1)
    #: L2 penalty on the dense layers (the sparse layer has none: SparseAdam).
    weight_decay: float = Field(0.0, ge=0)
    huber_delta: float = Field(1.0, gt=0)
    #: Loss weight of each training item: (price / median price) ** dollar_weight (0: all alike, the log-price fit).
    dollar_weight: float = Field(0.0, ge=0, le=2)
    #: Members of the bag, each with its own seed; their log prices are averaged.
    seeds: int = Field(2, ge=1, le=32)
    #: "alternate": every second member sees binarised inputs; "on": all; "off": none.
    binary: Literal["off", "on", "alternate"] = "alternate"
    #: Price bins of the classification head (0: no bin head); its expected value is averaged with the price head.
    bins: int = Field(0, ge=0, le=512)
    bin_weight: float = Field(0.5, ge=0)
    #: CPU threads for torch. The result depends on it (float sums split across threads), so it is part of the fit.
    threads: int = Field(2, ge=1, le=256)
    use_validation: bool = True

    @field_validator("hidden")
    @classmethod
    def _widths(cls, value: list[int]) -> list[int]:
        if not value or len(value) > 8:
            raise ValueError("hidden needs 1 to 8 layer widths, e.g. 256,64,32")
        if any(w < 1 or w > 4096 for w in value):
            raise ValueError("every hidden width must be between 1 and 4096")
        return list(value)

    @field_validator("bins")
    @classmethod
    def _bin_count(cls, value: int) -> int:
        if value == 1:
            raise ValueError("bins must be 0 (no bin head) or at least 2")
        return value


class SparseMLP(ClassicPredictor):
    id = "sparse-mlp"
    Config = SparseMLPConfig
    Model = SparseMLPModel
    requires = (Requirement.package("torch", "pip install 'price-bench-classic[torch]'"),)
