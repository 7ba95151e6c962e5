"""Dataset loaders: shapes, splits, the IDX and CIFAR-10 binary parsers and their errors."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from sdk.data import DatasetError, load_dataset, split_validation, stratified_split


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


@pytest.mark.parametrize("spec", ["mnist", "idx", "cifar10", "digits:x", ""])
def test_unknown_dataset(spec):
    with pytest.raises(DatasetError, match=r"unknown dataset .* expected one of mnist5k, digits"):
        load_dataset(spec)
