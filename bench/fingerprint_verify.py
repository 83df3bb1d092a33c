"""What the untrusted-input checks cost a run: fingerprint recomputation and work-folder digests.

A run recomputes the dataset fingerprint from the splits (``Dataset.verify``)
before anything is keyed on it, and checks the sha256 of every file in a work
folder before a predictor's ``load`` (``harness.workdir.verify_marker``).
This prints, per dataset size, the wall time of reading the three splits, of
hashing them (verify after the read), of a remembered check (a later run: the
folder's files are unchanged, so nothing is read), and of the digest check of a
work folder holding one artefact of the given size. One run, wall clock; the machine may be
shared (say so when you record the figures).

Targets: verifying (hashing) costs at most about what reading the splits
costs (it at most doubles the read a first run pays anyway); a remembered
check takes under 10 ms.

Run: .venv/bin/python bench/fingerprint_verify.py [--sizes 20000,100000] [--artefact-mb 100]
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path


def _items(split: str, n: int):
    from price_bench.items import Item

    rng = random.Random(split)
    words = ["steel", "cordless", "pack", "kitchen", "premium", "compact", "wireless", "cotton", "black", "set"]
    return [
        Item(
            id=f"{split}-{i:07d}",
            text=" ".join(rng.choice(words) for _ in range(rng.randint(60, 160))),
            price=round(rng.uniform(1, 999), 2),
            category=rng.choice(["Appliances", "Electronics", "Toys_and_Games"]),
        )
        for i in range(n)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20000,100000", help="total items per dataset (80/10/10 split)")
    parser.add_argument("--artefact-mb", type=int, default=100, help="size of the work-folder artefact to digest")
    args = parser.parse_args()

    from price_bench.data.dataset import SPLITS, open_dataset, write_dataset
    from price_bench.harness.workdir import read_marker, verify_marker, write_marker

    with tempfile.TemporaryDirectory(prefix="pb-bench-verify-") as tmp:
        home = Path(tmp)
        os.environ["PRICE_BENCH_HOME"] = str(home)  # the remembered checks live in the data home
        print(f"{'items':>8} {'read s':>8} {'verify s':>9} {'verify/read':>12} {'remembered ms':>14} {'target':>7}")
        for total in (int(s) for s in args.sizes.split(",")):
            n_test = n_val = total // 10
            splits = {"train": _items("train", total - 2 * n_test), "validation": _items("validation", n_val), "test": _items("test", n_test)}
            write_dataset(f"bench{total}", splits, {"recipe": {"name": "bench", "version": 1}}, home=home)
            del splits
            ds = open_dataset(f"bench{total}", home=home)
            ds._verified = False
            (home / "cache" / "verified-datasets.json").unlink(missing_ok=True)  # a first run
            started = time.perf_counter()
            for split in SPLITS:
                ds.items(split)
            read_s = time.perf_counter() - started
            started = time.perf_counter()
            ds.verify()
            verify_s = time.perf_counter() - started
            again = open_dataset(f"bench{total}", home=home)
            started = time.perf_counter()
            again.verify()
            memo_ms = (time.perf_counter() - started) * 1000
            ok = "ok" if verify_s <= 1.25 * read_s and memo_ms < 10 else "MISSED"
            print(f"{total:>8,} {read_s:>8.2f} {verify_s:>9.2f} {verify_s / read_s:>12.2f} {memo_ms:>14.1f} {ok:>7}")

        workdir = home / "work"
        workdir.mkdir()
        (workdir / "model.joblib").write_bytes(os.urandom(args.artefact_mb * 2**20))
        write_marker(workdir, 1.0)
        marker = read_marker(workdir)
        started = time.perf_counter()
        problem = verify_marker(workdir, marker)
        digest_s = time.perf_counter() - started
        assert problem is None, problem
        print(f"\nwork-folder digest check of a {args.artefact_mb} MB artefact: {digest_s:.2f} s")


if __name__ == "__main__":
    main()
