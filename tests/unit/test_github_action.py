"""action.yml and the example workflow: structurally valid GitHub Actions files (a small
schema in tests/unit/data, no network), wired to options scanproof really has."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from harness.cli._main import build_parser

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((Path(__file__).parent / "data" / "github_schema.json").read_text())
ACTION = ROOT / "action.yml"
WORKFLOW = ROOT / "examples" / "github-workflow.yml"


def _load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    # YAML 1.1 (PyYAML) reads the key `on` as True; GitHub reads it as "on"
    return {("on" if k is True else k): v for k, v in doc.items()}


def _validator(kind: str) -> jsonschema.Draft202012Validator:
    schema = {"$defs": SCHEMA["$defs"], **SCHEMA[kind]}
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _errors(kind: str, doc: dict[str, Any]) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in _validator(kind).iter_errors(doc)]


def test_the_action_and_the_example_workflow_pass_the_schema() -> None:
    assert _errors("action", _load(ACTION)) == []
    assert _errors("workflow", _load(WORKFLOW)) == []


@pytest.mark.parametrize(
    ("kind", "edit", "needle"),
    [
        ("workflow", lambda d: d.pop("jobs"), "'jobs' is a required property"),
        ("workflow", lambda d: d["jobs"]["gate"]["steps"].append({"name": "x"}), "is not valid"),
        ("workflow", lambda d: d["jobs"]["gate"].update(stepz=[]), "Additional properties"),
        ("action", lambda d: d["runs"]["steps"].append({"run": "ls"}), "'shell' is a required"),
        ("action", lambda d: d["runs"].update(using="node20"), "'composite' was expected"),
    ],
)
def test_the_schema_refuses_broken_files(kind: str, edit: Any, needle: str) -> None:
    doc = _load(ACTION if kind == "action" else WORKFLOW)
    edit(doc)
    errors = _errors(kind, doc)
    assert any(needle in e for e in errors), errors


def test_every_expression_names_a_declared_input_or_an_earlier_step() -> None:
    text = ACTION.read_text()
    action = _load(ACTION)
    inputs = set(action["inputs"])
    used = set(re.findall(r"inputs\.([A-Za-z0-9_-]+)", text))
    assert used <= inputs, used - inputs
    ids = [s.get("id") for s in action["runs"]["steps"]]
    for i, step in enumerate(action["runs"]["steps"]):
        for ref in re.findall(r"steps\.([A-Za-z0-9_-]+)\.outputs", yaml.safe_dump(step)):
            assert ref in ids[:i], f"step {i} reads steps.{ref} before it ran"
    for out in action["outputs"].values():
        (ref,) = re.findall(r"steps\.([A-Za-z0-9_-]+)\.outputs", out["value"])
        assert ref in ids


def test_the_example_workflow_passes_only_inputs_the_action_declares() -> None:
    inputs = set(_load(ACTION)["inputs"])
    steps = _load(WORKFLOW)["jobs"]["gate"]["steps"]
    (gate,) = [s for s in steps if "scanproof" in s.get("uses", "")]
    assert set(gate["with"]) <= inputs


def test_run_scripts_take_inputs_from_env_and_are_valid_bash() -> None:
    """No ${{ }} inside a script (script injection from a PR title or input), and bash
    parses each script."""
    for step in _load(ACTION)["runs"]["steps"]:
        if "run" not in step:
            continue
        assert "${{" not in step["run"], step["run"]
        if shutil.which("bash"):
            subprocess.run(["bash", "-n", "-c", step["run"]], check=True)


def test_the_gate_command_in_the_action_uses_options_scanproof_gate_has() -> None:
    (gate,) = [s for s in _load(ACTION)["runs"]["steps"] if s.get("id") == "gate"]
    options = set(re.findall(r"(--[a-z][a-z-]+)", gate["run"]))
    assert {"--json", "--out", "--thresholds", "--app", "--contract"} <= options
    sub = next(a for a in build_parser()._actions if a.dest == "verb").choices["gate"]  # type: ignore[union-attr]
    known = {s for a in sub._actions for s in a.option_strings}
    assert options <= known, options - known
