"""Cached artifacts: written whole or not at all, sealed, and moved to quarantine when damaged, never fatal."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inference.artifacts import (
    QUARANTINE,
    quarantine,
    seal,
    staged,
    sweep_partials,
    unsealed_reason,
)
from inference.backends.auto import Trial, load_decision, save_decision


def test_a_staged_write_replaces_the_target_only_when_it_completes(tmp_path):
    target = tmp_path / "decision.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with staged(target) as partial:
            partial.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["decision.json"]
    with staged(target) as partial:
        assert partial.name.startswith(f"partial-{os.getpid()}-") and partial.suffix == ".json"
        partial.write_text("new")
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["decision.json"]


def test_a_sealed_folder_is_trusted_until_any_of_its_files_changes(tmp_path):
    folder = tmp_path / "ir-float"
    with staged(folder, directory=True) as partial:
        (partial / "model.xml").write_text("<net/>")
        (partial / "model.bin").write_bytes(b"\0" * 100)
    assert unsealed_reason(folder) == "no seal: its build did not finish"
    seal(folder)
    assert unsealed_reason(folder) is None
    (folder / "model.bin").write_bytes(b"\0" * 50)
    assert "changed" in unsealed_reason(folder)


def test_quarantine_moves_the_file_and_its_seal_aside_with_one_line(tmp_path, caplog):
    package = tmp_path / "int8-t1-abc.pt2"
    package.write_bytes(b"")
    seal(package)
    caplog.set_level("WARNING")
    moved = quarantine(package, "truncated")
    assert moved.parent == tmp_path / QUARANTINE and moved.name.endswith("int8-t1-abc.pt2")
    assert not package.exists() and not (tmp_path / "int8-t1-abc.pt2.sha256").exists()
    assert len(caplog.records) == 1 and "int8-t1-abc.pt2" in caplog.text and "truncated" in caplog.text


def test_leftovers_of_a_killed_writer_are_swept_but_not_those_of_a_live_one(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / f"partial-{dead.stdout.strip()}-x.pt2").write_bytes(b"half")
    (tmp_path / f"partial-{os.getpid()}-y.pt2").write_bytes(b"being written")
    sweep_partials(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [f"partial-{os.getpid()}-y.pt2"]


@pytest.mark.parametrize("content", [b"", b"{\"chosen\": ", b"\xff\xfe garbage", b"[]"])
def test_a_damaged_auto_decision_is_quarantined_and_decided_again(tmp_path, content):
    path = tmp_path / "auto-r4.json"
    path.write_bytes(content)
    assert load_decision(path) is None
    assert not path.exists() and len(list((tmp_path / QUARANTINE).iterdir())) == 1
    save_decision(path, Trial("torch", "int8", 1.0, 500.0), [])
    assert load_decision(path).choice.precision == "int8" and json.loads(path.read_text())["trials"] == []


def test_a_damaged_cached_demo_model_is_quarantined_and_rebuilt(tmp_path, monkeypatch):
    from stream.tools import demo

    path = demo.demo_bundle_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 truncated")
    monkeypatch.setattr(demo, "build_demo_model", lambda target: ("rebuilt", Path(target)))
    assert demo.ensure_demo_model(path) == ("rebuilt", path)
    assert len(list((path.parent / QUARANTINE).iterdir())) == 1


def test_a_zombie_writer_counts_as_gone(tmp_path):
    """A build killed with its service is reparented; until reaped it is a zombie, and its files are leftovers."""
    from inference.artifacts import process_alive

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while process_alive(child.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not process_alive(child.pid)  # exited, not reaped yet: a zombie
    (tmp_path / f"partial-{child.pid}-inductor-x").mkdir()
    sweep_partials(tmp_path)
    assert not any(tmp_path.iterdir())
    child.wait()
    assert process_alive(os.getpid())


def test_compiled_models_cached_before_their_output_held_the_features_are_not_found_under_the_new_key(monkeypatch):
    """Their output is the logits alone: a runner must never load one as if it gave the features too."""
    import hashlib

    from inference.backends import select
    from inference.backends.select import weights_key
    from tests.test_features import tiny_with_head

    classifier = tiny_with_head()
    before = hashlib.sha256(repr(classifier.input_spec).encode())  # the key as it was computed then
    for name, tensor in sorted(classifier.weights().items()):
        before.update(name.encode())
        before.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    assert weights_key(classifier) != before.hexdigest()[:16]
    assert weights_key(classifier) == weights_key(tiny_with_head())  # still the same key for the same model
    key = weights_key(classifier)
    monkeypatch.setattr(select, "FEATURES_REVISION", select.FEATURES_REVISION + 1)
    assert weights_key(classifier) != key
