"""The data fingerprint of the real TOFU and MUSE tasks is the sha256 of their split files'
bytes: the same files give the same task fingerprint wherever they lie, one changed byte gives
another. Tiny folders in the hub layouts, written here (no model is loaded)."""

import hashlib
import shutil

import pytest

from unlearnbench.cache import fingerprint
from unlearnbench.data import write_parquet_split, write_split
from unlearnbench.tasks.muse import make_muse_task, muse_schema
from unlearnbench.tasks.tofu import make_tofu_task, tofu_schema

ROW = {"question": "q?", "answer": "a.", "paraphrased_answer": "p.", "perturbed_answer": ["x.", "y."],
       "text": "some text", "prompt": "a prompt", "gt": "its continuation"}


@pytest.fixture
def tofu_folder(tmp_path):
    folder = tmp_path / "TOFU"
    for split, fields in tofu_schema("forget01").items():
        write_split(folder, split, [{f: ROW[f] for f in fields}] * 2)
    return folder


@pytest.fixture
def muse_folder(tmp_path):
    root = tmp_path / "MUSE-Books"
    for subset, splits in muse_schema("books").items():
        for names, fields in splits.items():
            split = names if isinstance(names, str) else names[0]
            write_parquet_split(root / subset, split, [{f: ROW[f] for f in fields}] * 2)
    return root


def test_tofu_data_fingerprint_is_the_sha256_of_each_split_file(tofu_folder):
    task = make_tofu_task("forget01", data_dir=str(tofu_folder))
    expected = fingerprint({s: [hashlib.sha256((tofu_folder / f"{s}.json").read_bytes()).hexdigest()]
                            for s in tofu_schema("forget01")})
    assert task.data_fingerprint == expected


def test_tofu_fingerprint_follows_the_bytes_not_the_folder(tofu_folder, tmp_path):
    copy = tmp_path / "elsewhere" / "TOFU"
    shutil.copytree(tofu_folder, copy)
    assert make_tofu_task("forget01", data_dir=str(copy)).fingerprint == \
        make_tofu_task("forget01", data_dir=str(tofu_folder)).fingerprint
    path = copy / "forget01.json"
    path.write_text(path.read_text().replace("a.", "b.", 1))
    assert make_tofu_task("forget01", data_dir=str(copy)).fingerprint != \
        make_tofu_task("forget01", data_dir=str(tofu_folder)).fingerprint


def test_muse_fingerprint_follows_the_bytes_not_the_folder(muse_folder, tmp_path):
    copy = tmp_path / "elsewhere" / "MUSE-Books"
    shutil.copytree(muse_folder, copy)
    original = make_muse_task("books", data_dir=str(muse_folder)).fingerprint
    assert make_muse_task("books", data_dir=str(copy)).fingerprint == original
    write_parquet_split(copy / "raw", "forget", [{"text": "other text"}] * 2)
    assert make_muse_task("books", data_dir=str(copy)).fingerprint != original


def test_muse_retain_qa_under_its_older_name_hashes_the_file_it_read(muse_folder):
    before = make_muse_task("books", data_dir=str(muse_folder)).data_fingerprint
    shard = next((muse_folder / "knowmem").glob("retain_qa-*.parquet"))
    shard.rename(shard.with_name(shard.name.replace("retain_qa", "retain2_qa")))
    assert make_muse_task("books", data_dir=str(muse_folder)).data_fingerprint == before
