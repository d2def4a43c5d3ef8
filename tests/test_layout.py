"""The tree's shape: rooms in `stream/`, dependencies that point one way, no import circle anywhere."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("capture", "config", "inference", "stream")
STREAM_TOP_LEVEL = {"__init__.py", "__main__.py", "cli.py"}
ROOT = "stream.pipeline.app"
RANKS = {"pipeline": 0, "wire": 1, "overlay": 1, "web": 2, ROOT: 3, "service": 4, "tools": 5, "cli": 6, "__main__": 7}
"""Inside `stream/` a module imports its own room or lower ones; `pipeline.app`, the composition root, sits above
the rooms it wires together (wire, overlay, web) while the rest of `pipeline/` sits below them."""


def module_files() -> dict[str, Path]:
    files = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts)
            files[name.removesuffix(".__init__")] = path
    return files


def imported_names(path: Path) -> set[str]:
    """Every module named by an import anywhere in the file: top level, inside functions, under TYPE_CHECKING."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    return {name: {target for target in imported_names(path) if target in files and target != name}
            for name, path in files.items()}


GRAPH = import_graph()


def room(module: str) -> str:
    """The room of a module in `stream/` (its sub-package, or the composition root, or a top-level module)."""
    parts = module.split(".")
    return ROOT if module == ROOT else parts[1] if len(parts) > 1 else "stream"


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    state: dict[str, str] = {}

    def visit(path: list[str]) -> list[str]:
        state[path[-1]] = "open"
        for target in sorted(graph[path[-1]]):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(path + [target])):
                return cycle
        state[path[-1]] = "done"
        return []

    for start in sorted(graph):
        if start not in state and (cycle := visit([start])):
            return cycle
    return []


def test_stream_has_no_loose_modules():
    loose = {path.name for path in (REPO / "stream").glob("*.py")} - STREAM_TOP_LEVEL
    assert not loose, f"modules outside a room of stream/: {sorted(loose)}"


def test_every_stream_room_is_ranked():
    rooms = {room(name) for name in GRAPH if name.startswith("stream.")} - {"stream"}
    assert rooms <= set(RANKS), f"rooms without a place in RANKS: {sorted(rooms - set(RANKS))}"
    assert {"pipeline", "wire", "overlay", "web", "service", "tools"} <= rooms


def test_no_import_circle_in_the_tree():
    assert find_cycle(GRAPH) == []


def test_find_cycle_reports_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


@pytest.mark.parametrize("package", ["capture", "config", "inference"])
def test_lower_packages_never_import_stream(package):
    offenders = {name: sorted(t for t in targets if t.startswith("stream"))
                 for name, targets in GRAPH.items() if name.startswith(package + ".") or name == package}
    assert not {name: t for name, t in offenders.items() if t}


def test_capture_never_imports_inference():
    offenders = {name for name, targets in GRAPH.items()
                 if name.startswith("capture") and any(t.startswith("inference") for t in targets)}
    assert not offenders


def test_stream_rooms_import_downwards_only():
    ranked = {name: RANKS.get(room(name)) for name in GRAPH if name.startswith("stream.")}
    upward = [
        f"{name} -> {target}"
        for name, rank in ranked.items()
        for target in GRAPH[name]
        if target in ranked and room(target) != room(name) and ranked[target] >= rank
    ]
    assert upward == []
