"""Every config key, CLI flag and wire field is documented where it lives, and every relative link resolves."""

import argparse
import json
import re
import time
import typing
from pathlib import Path

import numpy as np
import pytest

from capture.frame import Frame
from capture.status import CameraStatus
from config.schema import AppConfig
from inference.topk import Prediction
from stream.cli import build_parser
from stream.pipeline.result import EventKind, ItemEvent, Result
from stream.pipeline.stats import WorkerStats
from stream.wire.encoder import WireEncoder
from stream.wire.heartbeat import camera_entries

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
CONFIGURATION = REPO / "docs" / "configuration.md"
WIRE_FORMAT = REPO / "docs" / "wire-format.md"
MARKDOWN = [README, REPO / "CONTRIBUTING.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def schema_keys() -> list[tuple[str, str]]:
    keys = []
    for table, field in AppConfig.model_fields.items():
        model = typing.get_args(field.annotation)[0] if typing.get_args(field.annotation) else field.annotation
        keys += [(table, key) for key in model.model_fields]
    return keys


@pytest.mark.parametrize("table, key", schema_keys())
def test_every_config_key_is_in_the_configuration_doc_and_default_toml(table, key):
    doc = CONFIGURATION.read_text()
    default = (REPO / "config" / "default.toml").read_text()
    assert f"`{key}`" in doc or f"`{table}.{key}`" in doc or f"`{key}`," in doc, f"configuration.md lacks {table}.{key}"
    assert f"{key} =" in default or f"# {key} =" in default, f"default.toml lacks {table}.{key}"


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command words, parser) for every runnable command, e.g. (("model", "fetch"), parser)."""
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subparsers:
        yield path, parser
    for action in subparsers:
        for name, sub in action.choices.items():
            yield from commands(sub, path + (name,))


def synopsis(words: tuple[str, ...]) -> str:
    """The lines of the README's command-line block that describe `streamrec WORDS`."""
    block = README.read_text().split("## Command line", 1)[1].split("```", 2)[1]
    entries = re.split(r"\n(?=streamrec )", block)
    prefix = "streamrec " + " ".join(words)
    found = [entry for entry in entries if re.match(re.escape(prefix) + r"(\s|$)", entry)]
    assert found, f"the README's command line lacks `{prefix}`"
    return found[0]


def cli_cases():
    for words, parser in commands(build_parser()):
        flags = [flag for action in parser._actions for flag in action.option_strings
                 if flag.startswith("--") and flag != "--help"]
        yield pytest.param(words, flags, id=" ".join(words))


@pytest.mark.parametrize("words, flags", list(cli_cases()))
def test_every_cli_flag_is_in_the_readme_synopsis(words, flags):
    text = synopsis(words)
    missing = [flag for flag in flags if not re.search(re.escape(flag) + r"(?![\w-])", text)]
    assert not missing, f"streamrec {' '.join(words)}: README lacks {missing}"


def wire_payloads() -> list[dict]:
    encoder = WireEncoder("boot1")
    frame = Frame("cam0", 7, time.time(), time.monotonic(), np.zeros((2, 2, 3), np.uint8))
    result = Result(frame, (Prediction("cola", 1, 0.9),), "m", time.monotonic(), reused=True, unknown_score=0.5,
                    unknown=True)
    event = ItemEvent("cam0", EventKind.ITEM_PRESENT, "e1", "cola", 1, 0.9, 5)
    cameras = camera_entries([CameraStatus("cam0", "synthetic")], WorkerStats(), lambda camera: None)
    messages = [encoder.result(result, 1.0, stale=True), encoder.event(event), encoder.heartbeat(1.0, cameras)]
    return [json.loads(payload) for _topic, payload in messages]


def field_names(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {name for inner in value.values() for name in field_names(inner)}
    if isinstance(value, list):
        return {name for inner in value for name in field_names(inner)}
    return set()


def test_every_wire_field_is_in_the_wire_format_doc():
    doc = WIRE_FORMAT.read_text()
    fields = {name for payload in wire_payloads() for name in field_names(payload)} - {"cam0"}
    missing = sorted(name for name in fields if not re.search(rf"[`\"]{name}[`\":]", doc))
    assert len(fields) > 20 and not missing, f"wire-format.md lacks {missing}"


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text())
    return {slug(match) for match in re.findall(r"^#+ (.+)$", text, re.M)}


def relative_links(path: Path) -> list[str]:
    text = FENCE.sub("", path.read_text())
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]


@pytest.mark.parametrize("doc", MARKDOWN, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(doc):
    broken = []
    for target in relative_links(doc):
        file_part, _, anchor = target.partition("#")
        resolved = (doc.parent / file_part).resolve() if file_part else doc
        if not resolved.exists():
            broken.append(target)
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(target)
    assert not broken, f"{doc.relative_to(REPO)}: broken links {broken}"


def test_slug_matches_github_anchors():
    assert slug("`[[cameras]]` (one table per camera)") == "cameras-one-table-per-camera"
    assert slug("Where the last 5–10% goes, and why 0.9 is close to the bound") == \
        "where-the-last-510-goes-and-why-09-is-close-to-the-bound"


def test_readme_stays_short_and_points_at_every_doc():
    readme = README.read_text()
    assert len(readme.splitlines()) <= 250
    for doc in sorted((REPO / "docs").glob("*.md")):
        assert f"(docs/{doc.name})" in readme, f"README does not link docs/{doc.name}"
    assert "(CONTRIBUTING.md)" in readme
