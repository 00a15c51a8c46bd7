"""Fault hooks: the user's own commands that kill, pause, restart or deploy a running
deployment (``scanproof run --target URL``), which scanproof cannot touch itself.

The contract's ``[hooks]`` table names one shell command per process fault, with
placeholders ``{worker}`` (the worker index the plan chose) and ``{url}`` (that
target's URL, shell-quoted), and an optional ``probe``: a URL whose body must change
for a kill, restart or deploy to count as landed (a pid or version endpoint):

.. code-block:: toml

    [hooks]
    worker_kill = "kubectl delete pod web-{worker}"
    worker_restart = ""                 # the platform restarts it by itself
    worker_pause = "docker pause web-{worker}"
    worker_resume = "docker unpause web-{worker}"
    deploy = "./deploy.sh"
    probe = "http://staging.internal:8000/version"
    timeout_s = 60

Each hook runs in its own session with ``timeout_s``; its exit status and the tail
of its output go into the fault's row of the history. A scenario that needs a fault
whose hook is missing is refused before anything runs (:func:`check_hooks`).

>>> hooks = hooks_from_mapping({"worker_kill": "kill-worker {worker} {url}"})
>>> hooks.render("worker_kill", worker=2, url="http://10.0.0.5:8000")
'kill-worker 2 http://10.0.0.5:8000'
>>> check_hooks(hooks, ["worker_kill", "delete_keys"])
>>> check_hooks(hooks, ["deploy"])  # doctest: +ELLIPSIS
Traceback (most recent call last):
  ...
harness.errors.UsageError: fault 'deploy' needs hook 'deploy' in the contract's [hooks] table ...
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
import shlex
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from harness.errors import UsageError

HOOK_NAMES: Final = ("worker_kill", "worker_pause", "worker_resume", "worker_restart", "deploy")
#: The hooks each process fault needs (worker_restart is optional: after a kill, a
#: platform that restarts workers by itself needs none).
NEEDED: Final[Mapping[str, tuple[str, ...]]] = {
    "worker_kill": ("worker_kill",),
    "worker_pause": ("worker_pause", "worker_resume"),
    "deploy": ("deploy",),
}
PLACEHOLDERS: Final = ("worker", "url")
DEFAULT_TIMEOUT_S: Final = 30.0
_EXAMPLES: Final = {
    "worker_kill": 'worker_kill = "kubectl delete pod web-{worker}"',
    "worker_pause": 'worker_pause = "docker pause web-{worker}"',
    "worker_resume": 'worker_resume = "docker unpause web-{worker}"',
    "worker_restart": 'worker_restart = "systemctl restart web@{worker}"',
    "deploy": 'deploy = "./deploy.sh"',
}
# Lower-case words in braces are placeholders; anything else ({print $1}, ${VAR}) is
# left to the shell.
_PLACEHOLDER: Final = re.compile(r"\{([a-z_]+)\}")
_TAIL_CHARS: Final = 400


@dataclass(frozen=True, slots=True, kw_only=True)
class Hooks:
    """The ``[hooks]`` table: one shell command per process fault ("" = none)."""

    worker_kill: str = ""
    worker_pause: str = ""
    worker_resume: str = ""
    worker_restart: str = ""
    deploy: str = ""
    probe: str = ""  # a URL whose body must change for a kill/restart/deploy to land
    timeout_s: float = DEFAULT_TIMEOUT_S

    def __post_init__(self) -> None:
        for name in HOOK_NAMES:
            for found in _PLACEHOLDER.findall(getattr(self, name)):
                if found not in PLACEHOLDERS:
                    raise UsageError(
                        f"hooks.{name} {getattr(self, name)!r}: unknown placeholder {{{found}}}; "
                        "valid: {worker}, {url}"
                    )
        if self.probe and not self.probe.startswith(("http://", "https://")):
            raise UsageError(
                f"hooks.probe {self.probe!r}: must be an http:// URL, e.g. "
                '"http://127.0.0.1:8000/pid"'
            )
        if not (math.isfinite(self.timeout_s) and self.timeout_s > 0):
            raise UsageError(f"hooks.timeout_s {self.timeout_s!r}: must be a number of seconds > 0")

    def command(self, name: str) -> str:
        """The hook's command template ("" when none is set)."""
        if name not in HOOK_NAMES:
            raise ValueError(f"no hook {name!r}")
        return str(getattr(self, name))

    def render(self, name: str, *, worker: int, url: str) -> str:
        """Hook ``name`` with its placeholders filled in (``{url}`` shell-quoted)."""
        template = self.command(name)
        values = {"worker": str(worker) if worker >= 0 else "", "url": shlex.quote(url)}
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def hooks_from_mapping(value: Any, *, source: str = "contract") -> Hooks:
    """A :class:`Hooks` from a parsed ``[hooks]`` table; errors name ``source``."""
    if not isinstance(value, Mapping):
        raise UsageError(f"{source}: [hooks] must be a table, got {value!r}")
    valid = tuple(f.name for f in dataclasses.fields(Hooks))
    kwargs: dict[str, Any] = {}
    for name, item in value.items():
        if name not in valid:
            raise UsageError(
                f"{source}: hooks.{name} is not a field of [hooks]; valid: {', '.join(valid)}"
            )
        if name == "timeout_s":
            if isinstance(item, bool) or not isinstance(item, int | float):
                raise UsageError(f"{source}: hooks.timeout_s must be a number of seconds")
            kwargs[name] = float(item)
        elif not isinstance(item, str):
            raise UsageError(f"{source}: hooks.{name} must be a string (a shell command or URL)")
        else:
            kwargs[name] = item.strip()
    return Hooks(**kwargs)


def check_hooks(hooks: Hooks, faults: Iterable[str]) -> None:
    """Refuse (UsageError, one line) a schedule with a process fault whose hook is missing."""
    for fault in faults:
        for name in NEEDED.get(fault, ()):
            if not hooks.command(name):
                raise UsageError(
                    f"fault {fault!r} needs hook {name!r} in the contract's [hooks] table "
                    f"(none is set); add e.g. {_EXAMPLES[name]} or drop the fault from the "
                    "scenario"
                )


@dataclass(frozen=True, slots=True)
class HookResult:
    """One hook run: its command, exit status (None: killed at its timeout), output tail."""

    name: str
    command: str
    exit_code: int | None
    output: str  # the tail of stdout and stderr, interleaved
    seconds: float

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def describe(self) -> str:
        """``hook worker_kill exit 0 in 0.05 s: <output tail>``"""
        status = (
            f"timed out after {self.seconds:.1f} s"
            if self.exit_code is None
            else f"exit {self.exit_code} in {self.seconds:.2f} s"
        )
        tail = " ".join(self.output.split())
        return f"hook {self.name} {status}" + (f": {tail}" if tail else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "hook": self.name,
            "command": self.command,
            "exit": self.exit_code,
            "output": self.output,
            "seconds": round(self.seconds, 3),
        }


def run_hook(name: str, command: str, *, timeout_s: float) -> HookResult:
    """Run ``command`` through ``/bin/sh`` in its own session; past ``timeout_s`` the
    whole session is killed (exit_code None). Never raises for the command's failure.

    >>> run_hook("deploy", "echo deployed; exit 3", timeout_s=5).describe()
    ... # doctest: +ELLIPSIS
    'hook deploy exit 3 in ... s: deployed'
    """
    began = time.monotonic()
    proc = subprocess.Popen(
        command,
        shell=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout_s)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        _kill_session(proc.pid)
        out, _ = proc.communicate()
        code = None
    text = out.decode(errors="replace")
    return HookResult(name, command, code, text[-_TAIL_CHARS:], time.monotonic() - began)


def _kill_session(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def read_probe(url: str, *, timeout_s: float = 5.0) -> str:
    """The body of GET ``url`` as text, or ``error: ...`` when it cannot be read."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as answer:
            return bytes(answer.read(4096)).decode(errors="replace").strip()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"error: {exc}"


def wait_probe_change(url: str, before: str, *, timeout_s: float) -> str:
    """Poll ``url`` until its body differs from ``before`` (and is not an error), or
    ``timeout_s`` passes; returns the last body read."""
    deadline = time.monotonic() + timeout_s
    while True:
        body = read_probe(url, timeout_s=min(5.0, timeout_s))
        if (body != before and not body.startswith("error: ")) or time.monotonic() >= deadline:
            return body
        time.sleep(0.1)


__all__ = [
    "DEFAULT_TIMEOUT_S",
    "HOOK_NAMES",
    "NEEDED",
    "HookResult",
    "Hooks",
    "check_hooks",
    "hooks_from_mapping",
    "read_probe",
    "run_hook",
    "wait_probe_change",
]
