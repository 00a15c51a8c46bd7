"""The history schema: every column name scanproof writes or reads, in one place.

Every driver (scripted runner, locust, hypothesis) records into this schema and
every checker reads only this schema, so a checker never needs to know which
driver wrote a row.

A history is a set of JSONL shards (one per recording process). Each line is one
event, with the event type in :data:`EVENT`:

``invoke``
    Written *before* a request is sent: ``op``, ``proc``, ``kind``, ``tenant``,
    ``scan_id`` (empty for ``discover``), ``filters``, ``pinned_worker``,
    ``t_invoke_ns``.
``complete``
    Written when the request ends: ``op``, ``outcome`` (``ok`` it happened,
    ``fail`` it certainly did not, ``info`` unknown), ``t_complete_ns``,
    ``worker``, ``http_status``, ``body_status`` (the canonical state),
    ``raw_status`` (the word the answer said), ``completed``, ``total``,
    ``found``, ``has_progress``, ``items``, ``body_scan_ids``, ``body_user_ids``,
    ``scan_id`` (for ``discover``: the id the service issued), ``error``.
``fault``
    One nemesis action: ``fault``, ``fault_id``, ``target``, ``params``,
    ``t_start_ns``, ``t_end_ns``, ``landed``, ``evidence``, ``destructive``,
    ``scope``, ``affected_scans``, ``affected_tenants``.

An ``invoke`` without a ``complete`` (the process died mid-request) pairs into
an op whose outcome is ``info``: it may or may not have happened.

Every line also carries the history format in ``v`` (now 2); a reader refuses
lines of a newer format rather than misread them. Format 2 made ``body_status``
canonical for status and results answers and added ``raw_status`` and ``items``;
a format-1 line is read as format 2 (see :func:`harness.history.outcomes.v1_state`).

``body_status`` holds one of the canonical states, decided when the answer is
recorded from the contract's ``[words]`` and ``[codes]``
(:func:`harness.history.outcomes.state_of`):

``scanning``  unfinished; ``pending``  unfinished *or unknown* (a ``words.pending`` word,
e.g. Celery's PENDING, which it also answers for an id it never saw);
``complete``  finished OK; ``failed``  finished with failure;
``not_found``  the service does not know the scan; ``refused``  it refuses this caller;
``""``  no state could be read, or an unknown word (``raw_status`` keeps it).

Times are ``time.monotonic_ns()``, comparable across processes on one machine.

A status op whose ``scan_id`` starts with :data:`NEVER_ISSUED_PREFIX` asks about an id
the service never issued (a probe of a service without tenants); the contract's
``unknown_id_state`` is its right answer.

Tables (see :mod:`harness.history.tables`): ``ops`` has one row per op with
:data:`OP_COLUMNS`; ``faults`` one row per fault with :data:`FAULT_COLUMNS`.
"""

from __future__ import annotations

from typing import Final, Literal

# --- event types -----------------------------------------------------------
EVENT: Final = "e"
EV_INVOKE: Final = "invoke"
EV_COMPLETE: Final = "complete"
EV_FAULT: Final = "fault"
FORMAT: Final = "v"  # every line's history format; absent in shards older than formats
HISTORY_FORMAT: Final = 2

# --- op columns ------------------------------------------------------------
OP: Final = "op"  # unique op id: "<proc>:<seq>"
PROC: Final = "proc"  # the recording process (driver instance)
KIND: Final = "kind"  # discover | status | results
TENANT: Final = "tenant"  # the identity that sent the request
SCAN_ID: Final = "scan_id"  # the scan the request is about (discover: the id issued)
FILTERS: Final = "filters"  # discover only: the filter set, canonical JSON ("" for none)
PINNED_WORKER: Final = "pinned_worker"  # -1 when routed, else the worker index asked for
T_INVOKE: Final = "t_invoke_ns"
T_COMPLETE: Final = "t_complete_ns"  # -1 when no completion was recorded
OUTCOME: Final = "outcome"  # ok | fail | info
WORKER: Final = "worker"  # X-Scanproof-Worker of the answer, -1 when unknown
HTTP_STATUS: Final = "http_status"  # 0 when there was no HTTP answer
BODY_STATUS: Final = "body_status"  # the canonical state (see above), "" when none
RAW_STATUS: Final = "raw_status"  # the word at the contract's status path, "" when none
COMPLETED: Final = "completed"  # progress.strategies_completed, -1 when absent
TOTAL: Final = "total"  # progress.total_strategies, -1 when absent
FOUND: Final = "found"  # progress.opportunities_found_so_far, -1 when absent
HAS_PROGRESS: Final = "has_progress"  # the body carried a progress object
ITEMS: Final = "items"  # how many entries the body's items list had, -1 when it had none
BODY_SCAN_IDS: Final = "body_scan_ids"  # every scan id in the body, sorted, ","-joined
BODY_USER_IDS: Final = "body_user_ids"  # every user id in the body, sorted, ","-joined
ERROR: Final = "error"  # exception class and message, "" when none

OP_COLUMNS: Final[tuple[str, ...]] = (
    OP,
    PROC,
    KIND,
    TENANT,
    SCAN_ID,
    FILTERS,
    PINNED_WORKER,
    T_INVOKE,
    T_COMPLETE,
    OUTCOME,
    WORKER,
    HTTP_STATUS,
    BODY_STATUS,
    RAW_STATUS,
    COMPLETED,
    TOTAL,
    FOUND,
    HAS_PROGRESS,
    ITEMS,
    BODY_SCAN_IDS,
    BODY_USER_IDS,
    ERROR,
)

# --- fault columns ---------------------------------------------------------
FAULT: Final = "fault"  # the fault's name, e.g. "delete_keys", "worker_kill", "heal"
FAULT_ID: Final = "fault_id"
TARGET: Final = "target"  # what it hit: "redis", "worker:2", a key pattern
PARAMS: Final = "params"  # JSON of the fault's parameters
T_START: Final = "t_start_ns"
T_END: Final = "t_end_ns"  # when the fault was healed (== start for instant faults)
LANDED: Final = "landed"  # the nemesis verified the fault took effect
EVIDENCE: Final = "evidence"  # how it knows ("pid 101 -> 202", "12 keys gone")
DESTRUCTIVE: Final = "destructive"  # the fault destroyed data a correct service may lose
SCOPE: Final = "scope"  # "all": every scan accepted before it; "listed": the affected_* below
AFFECTED_SCANS: Final = "affected_scans"  # ","-joined scan ids whose data it destroyed
AFFECTED_TENANTS: Final = "affected_tenants"  # ","-joined tenants whose data it destroyed

FAULT_COLUMNS: Final[tuple[str, ...]] = (
    FAULT_ID,
    FAULT,
    TARGET,
    PARAMS,
    T_START,
    T_END,
    LANDED,
    EVIDENCE,
    DESTRUCTIVE,
    SCOPE,
    AFFECTED_SCANS,
    AFFECTED_TENANTS,
)

Kind = Literal["discover", "status", "results"]
Outcome = Literal["ok", "fail", "info"]
KINDS: Final[tuple[Kind, ...]] = ("discover", "status", "results")
OUTCOMES: Final[tuple[Outcome, ...]] = ("ok", "fail", "info")

# The ids of never-issued probes: a well-formed UUID (services that parse ids as UUIDs
# answer about it) that no UUID generator hands out in practice.
NEVER_ISSUED_PREFIX: Final = "00000000-0000-4000-8000-"

# The anomaly classes, exactly as they appear in verdict.json and every report.
ANOMALY_CLASSES: Final[tuple[str, ...]] = (
    "status_not_found",
    "results_404",
    "zero_progress",
    "progress_regression",
    "status_regression",
    "wrong_scan",
    "cross_tenant_leak",
    "stuck_scan",
    "terminal_unreadable",
)
