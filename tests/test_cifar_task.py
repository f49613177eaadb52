"""The CIFAR task families read a local folder in the hub's parquet layout (PNG bytes plus a
label column), train a (tiny, here) ResNet-18 target, load ``--model`` folders, and name
what is missing from a broken folder."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from unlearnbench import registry
from unlearnbench.vision.classifier import ClassifierTrainConfig, build_classifier, predict_proba, save_classifier
from unlearnbench.data import write_parquet_split
from unlearnbench.errors import DataError
from unlearnbench.tasks.cifar import make_cifar_task

TINY = {"train": ClassifierTrainConfig(epochs=1, batch_size=16), "width": 4}
N = 40  # images per split


pytestmark = pytest.mark.usefixtures("one_thread")


def png(rng) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def write_cifar(folder, *, label="label", splits=("train", "test"), seed=0):
    rng = np.random.default_rng(seed)
    for split in splits:
        rows = [{"img": {"bytes": png(rng), "path": None}, label: i % 10} for i in range(N)]
        write_parquet_split(folder, split, rows)
    return folder


@pytest.fixture(scope="module")
def cifar10_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar10")
    write_cifar(root / "plain_text")
    return root


def test_cifar_variants_are_registered_as_classifier_tasks():
    names = registry.entries("task")
    for family in ("cifar10", "cifar100"):
        for variant in [f"class-{k}" for k in range(10)] + [f"{s}-{p}" for s in ("random", "worst") for p in (1, 5, 10)]:
            assert names[f"{family}/{variant}"].info["kind"] == "classifier"


def test_a_local_folder_in_hub_layout_loads_and_trains_a_tiny_resnet(cifar10_dir):
    task = make_cifar_task("cifar10", "class-0", data_dir=str(cifar10_dir), quiet=True, device="cpu", **TINY)
    assert task.x_train.shape == (N, 3, 32, 32) and task.x_test.shape == (N, 3, 32, 32)
    assert task.x_train.dtype == np.float32 and task.y_train.tolist() == [i % 10 for i in range(N)]
    assert -2.5 < float(task.x_train.min()) and float(task.x_train.max()) < 2.5  # per-channel normalised
    assert task.forget_indices.tolist() == [0, 10, 20, 30] and task.forget_class == 0
    assert task.model_config["arch"] == "resnet18" and task.num_classes == 10
    target = task.load_target()
    assert target.source == "recipe:cifar10-resnet18"
    probs = predict_proba(target.model, task.x_test)
    assert probs.shape == (N, 10) and np.all(np.isfinite(probs))
    assert task.load_oracle().fingerprint != target.fingerprint


def test_a_flat_folder_works_as_well(cifar10_dir, tmp_path):
    import shutil

    flat = shutil.copytree(cifar10_dir / "plain_text", tmp_path / "flat")
    a = make_cifar_task("cifar10", "random-10", data_dir=str(flat), quiet=True, **TINY)
    b = make_cifar_task("cifar10", "random-10", data_dir=str(cifar10_dir), quiet=True, **TINY)
    assert len(a.forget_indices) == 4
    assert np.array_equal(a.x_train, b.x_train) and a.fingerprint == b.fingerprint


def test_cifar100_reads_fine_labels_from_the_hub_subfolder(tmp_path):
    write_cifar(tmp_path / "cifar100", label="fine_label")
    task = make_cifar_task("cifar100", "class-3", data_dir=str(tmp_path), quiet=True, **TINY)
    assert task.num_classes == 100 and task.model_config["num_classes"] == 100
    assert task.forget_indices.tolist() == [3, 13, 23, 33]


def test_a_saved_classifier_is_the_target_when_given(cifar10_dir, tmp_path):
    config = {"arch": "resnet18", "num_classes": 10, "in_channels": 3, "image_size": 32, "width": 4}
    save_classifier(build_classifier(config, seed=5), config, tmp_path / "mine")
    task = make_cifar_task("cifar10", "class-1", data_dir=str(cifar10_dir), model=str(tmp_path / "mine"), quiet=True,
                           **TINY)
    target = task.load_target()
    assert target.source == str(tmp_path / "mine")
    assert torch.equal(target.model.fc.weight, build_classifier(config, seed=5).fc.weight)


def test_a_missing_label_column_is_named_with_the_layout(tmp_path):
    write_cifar(tmp_path, label="fine_label")  # a CIFAR-100 folder given to CIFAR-10
    with pytest.raises(DataError, match=r"lacks column\(s\) label \(has: img, fine_label\).*plain_text/train-00000"):
        make_cifar_task("cifar10", "class-0", data_dir=str(tmp_path), **TINY)


def test_a_missing_split_is_named(tmp_path):
    write_cifar(tmp_path / "plain_text", splits=("train",))
    with pytest.raises(DataError, match=r"missing split\(s\) test.*test-00000-of-00001.parquet"):
        make_cifar_task("cifar10", "class-0", data_dir=str(tmp_path), **TINY)


def test_an_empty_folder_explains_the_expected_layout(tmp_path):
    with pytest.raises(DataError, match=r"no train or test parquet shards.*columns img.*label"):
        make_cifar_task("cifar10", "class-0", data_dir=str(tmp_path), **TINY)


def test_without_data_dir_and_offline_the_hub_error_says_what_to_do():
    with pytest.raises(DataError, match=r"uoft-cs/cifar10.*--data-dir"):
        make_cifar_task("cifar10", "class-0", **TINY)
