"""The package's shape: no import circles, no path hacks, and dvc.yaml code deps that cover
everything a stage's code imports (so a code change always re-runs the stages it affects)."""

import ast
import re
from pathlib import Path

import yaml
from conftest import REPO, tracked_files


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """handkp modules imported anywhere in the file (lazy imports inside functions included)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("handkp")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target.startswith("handkp"):
                found.add(target)
                found |= {f"{target}.{a.name}" for a in node.names}  # `from .x import module`
    return found


def module_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in tracked_files("handkp", ".py")}
    return {name: {m for m in imported_modules(path) if m in files and m != name} for name, path in files.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle a depth-first walk of ``graph`` meets (each as the path that closes it)."""
    state: dict[str, int] = {}
    cycles = []

    def visit(node, stack):
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep) :] + [dep])
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return cycles


def test_no_import_circles():
    # A package's __init__ re-exporting its own modules is not a circle.
    cycles = [
        c
        for c in find_cycles(module_graph())
        if not all(m == c[0] or m.startswith(c[0] + ".") or c[0].startswith(m + ".") for m in c)
    ]
    assert not cycles, cycles


def test_subpackages_form_layers():
    """The folders are layers: core <- data <- model <- runtime <- deploy <- evaluate, with yolo,
    viz, report and app on top; no chain of subpackages leads back to where it started."""
    packages: dict[str, set[str]] = {}
    for module, deps in module_graph().items():
        if module.count(".") >= 2:
            own = module.split(".")[1]
            packages.setdefault(own, set()).update(
                d.split(".")[1] for d in deps if d.count(".") >= 2 and d.split(".")[1] != own
            )
    assert not find_cycles(packages)


def test_no_sys_path_manipulation():
    offenders = [
        str(p.relative_to(REPO))
        for p in tracked_files(suffix=".py")
        if "sys.path" in p.read_text(encoding="utf-8") and p.name != "test_layout.py"
    ]
    assert not offenders


def test_modules_stay_small():
    big = {
        str(p.relative_to(REPO)): n
        for p in tracked_files("handkp", ".py")
        if (n := len(p.read_text().splitlines())) > 500
    }
    assert not big


def test_stage_code_deps_are_exactly_the_subpackages_the_stage_imports():
    graph = module_graph()
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        script = REPO / re.search(r"python (stages/\S+\.py)", stage["cmd"]).group(1)
        assert str(script.relative_to(REPO)) in stage["deps"], name
        reached, todo = set(), {m for m in imported_modules(script) if m in graph}
        while todo:
            m = todo.pop()
            reached.add(m)
            todo |= graph[m] - reached
        needed = {f"handkp/{m.split('.')[1]}" for m in reached if m.count(".") >= 1}
        missing = needed - set(stage["deps"])
        assert not missing, f"stage {name} imports {sorted(missing)} but does not depend on them"
        extra = {d for d in stage["deps"] if d.startswith("handkp/")} - needed
        assert not extra, f"stage {name} depends on {sorted(extra)} without importing them (a change there re-runs it)"


def test_stages_depend_on_the_image_cache_through_its_checksum_file():
    """`dvc status` hashes a dependency once per stage, and a dep that its stage's dvc.lock entry
    lacks is hashed under DVC 2's name, evicting the other name from DVC's hash cache: the 4 GB
    image cache as a dep of many stages cost 34-40 s per call. Only prepare names the folder."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    folder = [name for name, stage in stages.items() for dep in stage.get("deps", []) if dep == "data/images"]
    assert not folder, f"stages depending on the whole image cache: {folder}"
    readers = [name for name, stage in stages.items() if "data/images/checksums.json" in stage.get("deps", [])]
    assert len(readers) >= 10 and "prepare" not in readers
