"""The import rules of docs/architecture.md, checked on the source with ``ast``.

Rules (each violation is reported as ``file:line imports X (rule)``):

(a) ``harness.judging``, ``harness.evidence``, ``harness.history`` and ``reports``
    import only the standard library, pandas, numpy, pyarrow, matplotlib and
    the pure parts of scanproof: ``harness.errors``, ``harness._toml``,
    ``harness._version``, ``harness._lazy``, ``harness.history``,
    ``harness.judging``, ``harness.targets.contract`` and (evidence and reports
    only) ``harness.evidence``; reports may import its own modules.
    So never ``reference_impl``, ``httpx``, ``redis``, ``fakeredis``,
    ``locust``, the cluster, the runner, the nemesis, exploration or the CLI.
(b) A private module (a dotted component starting with ``_``) is imported only
    from inside the package that contains it: ``harness.cluster._proc`` by
    ``harness.cluster.*``, ``harness._toml`` by ``harness.*``. Product code
    only (harness, reports, scenarios, benchmarks); tests may reach in.
(c) Nothing under ``harness/`` except ``harness/targets/reference.py`` imports
    ``reference_impl``; ``scenarios/`` and ``reports/`` never do.

An import is an ``import``/``from`` statement anywhere in a module (inside
functions and ``if TYPE_CHECKING:`` blocks too), a string literal passed to
``importlib.import_module``, a ``"-m", "pkg.mod"`` pair in a command line, and
the module names of a ``lazy_exports(__name__, {...})`` table, and an app spec
string ``"pkg.module:attr"`` naming a module of this repository (uvicorn imports
it), outside docstrings.
"""

from __future__ import annotations

import ast
import itertools
import re
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("harness", "reports", "scenarios", "benchmarks")
FIRST_PARTY = (*PRODUCT, "reference_impl", "tests")

PURE = ("harness.judging", "harness.evidence", "harness.history", "reports")
PURE_MAY_IMPORT = (
    "harness.errors",
    "harness._toml",
    "harness._version",
    "harness._lazy",
    "harness.history",
    "harness.judging",
    "harness.targets.contract",
    "pandas",
    "numpy",
    "pyarrow",
    "matplotlib",
)
EVIDENCE_MAY_IMPORT = ("harness.evidence",)  # for harness.evidence and reports only
REFERENCE_ADAPTER = "harness.targets.reference"

RULE_A = "a: judging/evidence/history/reports import only pure modules"
RULE_C = "c: only harness/targets/reference.py imports reference_impl"


def _under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _under_any(name: str, packages: tuple[str, ...]) -> bool:
    return any(_under(name, p) for p in packages)


@dataclass(frozen=True, slots=True)
class Import:
    file: str  # relative to the root, with "/"
    line: int
    importer: str  # dotted module name of the file
    module: str  # dotted name imported


def _module_name(rel: Path) -> str:
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _python_files(root: Path, tops: tuple[str, ...]) -> Iterator[Path]:
    for top in tops:
        base = root / top
        if base.is_dir():
            yield from sorted(p for p in base.rglob("*.py") if "__pycache__" not in p.parts)
        elif base.with_suffix(".py").is_file():
            yield base.with_suffix(".py")


_APP_SPEC = re.compile(r"([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):[A-Za-z_]\w*")


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the docstring nodes of ``tree`` (their examples are not imports)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and _string(first.value) is not None:
                found.add(id(first.value))
    return found


def _string(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _call_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _imported_names(
    tree: ast.Module, importer: str, is_package: bool, modules: frozenset[str]
) -> Iterator[tuple[int, str]]:
    """(line, dotted module name) for every import in ``tree``."""
    package = importer if is_package else importer.rpartition(".")[0]
    docstrings = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join([*base_parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                # `from pkg import _mod` imports the module pkg._mod when there is one
                yield node.lineno, sub if sub in modules else base
        elif isinstance(node, ast.Call):
            name = _call_name(node)
            if name == "import_module" and node.args:
                target = _string(node.args[0])
                if target is not None and not target.startswith("."):
                    yield node.lineno, target
            elif name == "lazy_exports" and len(node.args) >= 2:
                table = node.args[1]
                if isinstance(table, ast.Dict):
                    for value in table.values:
                        target = _string(value)
                        if target is not None:
                            yield value.lineno, target
        elif isinstance(node, ast.Constant) and id(node) not in docstrings:
            spec = _APP_SPEC.fullmatch(node.value) if isinstance(node.value, str) else None
            if spec is not None and spec.group(1).partition(".")[0] in FIRST_PARTY:
                yield node.lineno, spec.group(1)
        if isinstance(node, ast.List | ast.Tuple | ast.Call):
            items = node.args if isinstance(node, ast.Call) else node.elts
            for flag, arg in itertools.pairwise(items):
                target = _string(arg)
                if _string(flag) == "-m" and target is not None:
                    yield arg.lineno, target


def collect_imports(root: Path) -> list[Import]:
    """Every import of the product code under ``root``, sorted by file and line."""
    modules = frozenset(_module_name(p.relative_to(root)) for p in _python_files(root, FIRST_PARTY))
    found: set[Import] = set()
    for path in _python_files(root, PRODUCT):
        rel = path.relative_to(root)
        importer = _module_name(rel)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(rel))
        for line, module in _imported_names(tree, importer, rel.name == "__init__.py", modules):
            if module:
                found.add(Import(rel.as_posix(), line, importer, module))
    return sorted(found, key=lambda i: (i.file, i.line, i.module))


def _rule_a(imp: Import) -> str | None:
    if not _under_any(imp.importer, PURE):
        return None
    top = imp.module.partition(".")[0]
    if top in sys.stdlib_module_names or _under_any(imp.module, PURE_MAY_IMPORT):
        return None
    if _under(imp.importer, "reports") and _under(imp.module, "reports"):
        return None
    may_use_evidence = _under_any(imp.importer, ("harness.evidence", "reports"))
    if may_use_evidence and _under_any(imp.module, EVIDENCE_MAY_IMPORT):
        return None
    return RULE_A


def _private_package(module: str) -> str | None:
    """The package a private module is private to, or None when it is public."""
    parts = module.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not (part.startswith("__") and part.endswith("__")):
            return ".".join(parts[:i])
    return None


def _rule_b(imp: Import) -> str | None:
    if imp.module.partition(".")[0] not in FIRST_PARTY:
        return None
    owner = _private_package(imp.module)
    if owner is None or (owner and _under(imp.importer, owner)):
        return None
    return f"b: private to {owner or 'its own top-level package'}"


def _rule_c(imp: Import) -> str | None:
    if not _under(imp.module, "reference_impl"):
        return None
    if _under_any(imp.importer, ("scenarios", "reports")):
        return RULE_C
    if _under(imp.importer, "harness") and imp.importer != REFERENCE_ADAPTER:
        return RULE_C
    return None


def import_violations(root: Path) -> list[str]:
    """Every broken import rule under ``root`` as ``file:line imports X (rule)``."""
    lines = []
    for imp in collect_imports(root):
        for rule in (_rule_a, _rule_b, _rule_c):
            why = rule(imp)
            if why is not None:
                lines.append(f"{imp.file}:{imp.line} imports {imp.module} ({why})")
    return lines


# --------------------------------------------------------------------- the real tree
def test_the_tree_keeps_the_import_rules() -> None:
    violations = import_violations(ROOT)
    assert not violations, (
        f"{len(violations)} import(s) break the rules of docs/architecture.md:\n"
        + "\n".join(violations)
    )


def test_an_import_added_to_a_copy_of_the_tree_is_caught(tmp_path: Path) -> None:
    for top in PRODUCT:
        if (ROOT / top).is_dir():
            shutil.copytree(
                ROOT / top, tmp_path / top, ignore=shutil.ignore_patterns("__pycache__")
            )
    before = set(import_violations(tmp_path))
    verdict = tmp_path / "harness" / "judging" / "verdict.py"
    lines = verdict.read_text(encoding="utf-8").count("\n")
    with verdict.open("a", encoding="utf-8") as f:
        f.write("\ndef _peek():\n    import reference_impl.flags\n")
    added = set(import_violations(tmp_path)) - before
    where = f"harness/judging/verdict.py:{lines + 3} imports reference_impl.flags"
    assert added == {f"{where} ({RULE_A})", f"{where} ({RULE_C})"}


# ------------------------------------------------------------- synthetic trees
def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        # every folder on the way is a package
        for parent in path.relative_to(root).parents:
            init = root / parent / "__init__.py"
            if parent != Path(".") and not init.exists():
                init.write_text("", encoding="utf-8")
    return root


CLEAN_PURE = """\
from __future__ import annotations
import json
import numpy as np
import pandas as pd
from harness.errors import UsageError
from harness.history import schema as S
from harness.judging.verdict import Verdict
from harness.targets.contract import Contract
"""


@pytest.mark.parametrize(
    ("pure", "extra"),
    [
        ("harness/judging/x.py", "from harness import _toml\n"),
        ("harness/history/x.py", "from harness._lazy import lazy_exports\n"),
        ("harness/evidence/x.py", "from harness.evidence.stats import Tally\n"),
        (
            "reports/x.py",
            "from harness.evidence.stats import Tally\nfrom reports._html import page\n",
        ),
    ],
)
def test_a_pure_module_with_pure_imports_passes(tmp_path: Path, pure: str, extra: str) -> None:
    root = _tree(
        tmp_path,
        {
            pure: CLEAN_PURE + extra,
            "harness/_toml.py": "",
            "harness/_lazy.py": "",
            "harness/judging/verdict.py": "",
            "harness/evidence/stats.py": "",
            "reports/_html.py": "",
        },
    )
    assert import_violations(root) == []


def test_rule_b_keeps_harness_private_modules_from_reports(tmp_path: Path) -> None:
    # rule (a) lets a pure harness module use harness._toml; reports are outside harness
    root = _tree(tmp_path, {"reports/x.py": "from harness import _toml\n", "harness/_toml.py": ""})
    assert import_violations(root) == [
        "reports/x.py:1 imports harness._toml (b: private to harness)"
    ]


@pytest.mark.parametrize(
    ("module", "statement"),
    [
        ("redis", "import redis"),
        ("httpx", "import httpx"),
        ("fakeredis", "import fakeredis"),
        ("locust", "from locust import task"),
        ("reports.tables", "from reports.tables import class_table"),
        ("harness.cluster", "from harness.cluster import Cluster"),
        ("harness.run.scenario", "from harness.run.scenario import Scenario"),
        ("harness.faults.nemesis", "import harness.faults.nemesis"),
        ("harness.explore.steps", "from harness.explore import steps"),
        ("harness.cli", "import harness.cli"),
        ("harness.targets.reference", "from harness.targets.reference import DEFAULT_APP"),
    ],
)
def test_rule_a_refuses_machinery_in_a_pure_module(
    tmp_path: Path, module: str, statement: str
) -> None:
    root = _tree(
        tmp_path,
        {
            "harness/evidence/across_runs.py": f"import json\n\n\ndef f():\n    {statement}\n",
            "harness/explore/steps.py": "",
        },
    )
    assert import_violations(root) == [
        f"harness/evidence/across_runs.py:5 imports {module} ({RULE_A})"
    ]


def test_rule_a_lets_only_evidence_and_reports_use_evidence(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "harness/evidence/claims.py": "from harness.evidence.stats import Tally\n",
            "reports/matrix.py": "from harness.evidence.matrix import Effect\n",
            "harness/judging/checkers.py": "from harness.evidence.stats import wilson\n",
            "harness/evidence/stats.py": "",
            "harness/evidence/matrix.py": "",
        },
    )
    assert import_violations(root) == [
        f"harness/judging/checkers.py:1 imports harness.evidence.stats ({RULE_A})"
    ]


def test_rule_a_does_not_bind_the_machinery(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "harness/run/runner.py": (
                "import httpx\nimport redis\nfrom harness.cluster import Cluster\n"
            )
        },
    )
    assert import_violations(root) == []


PRIVATE_TREE = {
    "harness/_toml.py": "",
    "harness/cluster/_proc.py": "",
    "harness/cluster/router/_pool.py": "",
    # inside the package that holds them: allowed, however deep, however written
    "harness/cluster/supervisor.py": "from harness.cluster._proc import spawn\n",
    "harness/cluster/router/_main.py": "from .._proc import spawn\nfrom ._pool import Pool\n",
    "harness/cluster/__init__.py": "from . import _proc\n",
    "harness/run/scenario.py": "from harness._toml import read_toml\n",
}


def test_rule_b_passes_private_modules_used_inside_their_package(tmp_path: Path) -> None:
    assert import_violations(_tree(tmp_path, PRIVATE_TREE)) == []


@pytest.mark.parametrize(
    ("file", "statement", "module", "owner"),
    [
        ("harness/run/_play.py", "from harness.cluster._proc import spawn", "harness.cluster._proc",
         "harness.cluster"),
        ("harness/run/_play.py", "from harness.cluster import _proc", "harness.cluster._proc",
         "harness.cluster"),
        ("harness/cluster/supervisor.py", "from .router._pool import Pool",
         "harness.cluster.router._pool", "harness.cluster.router"),
        ("scenarios/locust/recording.py", "from harness._toml import read_toml", "harness._toml",
         "harness"),
        ("reports/render.py", "import harness._toml", "harness._toml", "harness"),
        ("benchmarks/bench_x.py",
         "import importlib\nimportlib.import_module('harness.cluster._proc')",
         "harness.cluster._proc", "harness.cluster"),
    ],
)  # fmt: skip
def test_rule_b_refuses_a_private_module_from_outside_its_package(
    tmp_path: Path, file: str, statement: str, module: str, owner: str
) -> None:
    root = _tree(tmp_path, {**PRIVATE_TREE, file: f"{statement}\n"})
    line = statement.count("\n") + 1
    assert import_violations(root) == [f"{file}:{line} imports {module} (b: private to {owner})"]


def test_rule_b_sees_module_command_lines_and_lazy_tables(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            **PRIVATE_TREE,
            "harness/run/_locust.py": (
                "import sys\n"
                "CMD = [sys.executable, '-m', 'harness.cluster._proc', 'x']\n"
                "OK = [sys.executable, '-m', 'locust']\n"
            ),
            "harness/__init__.py": (
                "from harness._lazy import lazy_exports\n"
                "__getattr__, __dir__ = lazy_exports(\n"
                "    __name__,\n"
                "    {'Pool': 'harness.cluster.router._pool', 'Cluster': 'harness.cluster'},\n"
                ")\n"
            ),
            "harness/_lazy.py": "",
        },
    )
    assert import_violations(root) == [
        "harness/__init__.py:4 imports harness.cluster.router._pool "
        "(b: private to harness.cluster.router)",
        "harness/run/_locust.py:2 imports harness.cluster._proc (b: private to harness.cluster)",
    ]


def test_rule_b_leaves_private_names_of_public_modules_and_third_parties_alone(
    tmp_path: Path,
) -> None:
    root = _tree(
        tmp_path,
        {
            "harness/errors.py": "",
            "harness/run/x.py": "from harness.errors import _catalogue\nimport _thread\n",
        },
    )
    assert import_violations(root) == []


@pytest.mark.parametrize(
    "file",
    [
        "harness/cluster/_cluster.py",
        "harness/evidence/matrix.py",
        "harness/targets/contract.py",
        "scenarios/stateful/machine.py",
        "reports/render.py",
    ],
)
def test_rule_c_refuses_reference_impl_outside_the_adapter(tmp_path: Path, file: str) -> None:
    root = _tree(tmp_path, {file: "from reference_impl.flags import Flags\n"})
    violations = import_violations(root)
    assert f"{file}:1 imports reference_impl.flags ({RULE_C})" in violations


def test_rule_c_sees_app_specs_but_not_docstring_examples(tmp_path: Path) -> None:
    source = (
        '"""Run it.\n\n>>> start(app="reference_impl.app:app")\n"""\n'
        'DEFAULT_APP = "reference_impl.app:app"\n'
        'OTHER = "mypkg.main:app"\n'
        'KEY = "opportunity_scan_lookup:scan_1"\n'
    )
    root = _tree(tmp_path, {"harness/cli/_options.py": source})
    assert import_violations(root) == [
        f"harness/cli/_options.py:5 imports reference_impl.app ({RULE_C})"
    ]


def test_rule_c_passes_the_adapter_and_the_benchmarks(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "harness/targets/reference.py": "from reference_impl.flags import PRESETS, Flags\n",
            "benchmarks/bench_restart.py": "import reference_impl.app\n",
        },
    )
    assert import_violations(root) == []
