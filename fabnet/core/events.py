"""Task events as values: what the hub decided or an agent reported about one task.

Each event carries ``event_id`` (the MQTT message id, uuid4 hex) so that applying it is
idempotent. Agent events name the machine and the ``offer_no`` they answer; an answer to an
older offer is stale. Fields are validated on construction and raise ``InvalidInput``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fabnet.core.ids import new_id
from fabnet.core.states import FailureCause
from fabnet.errors import InvalidInput

DEFAULT_LEASE_S = 60.0
DEFAULT_OFFER_S = 30.0
# How far an agent's reported figures may stray from the hub's analysis of the G-code it was
# assigned before a completion is refused (issue 13): a real run uses up to a purge line and
# a failed-and-resumed print more filament than the analysis, and a slow machine, pauses and
# a heat-up take far longer than the estimate; a forged 10^12 is outside either way.
COMPLETION_GRAMS_FACTOR = 3.0
COMPLETION_GRAMS_SLACK = 20.0  # g
COMPLETION_TIME_FACTOR = 10.0
COMPLETION_TIME_SLACK_S = 3600.0


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise InvalidInput(f"{name} must be > 0, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class TaskOffered:
    """Hub offers a queued task to ``machine_id``; the offer lapses after ``offer_s`` seconds."""

    machine_id: str
    offer_s: float = DEFAULT_OFFER_S
    event_id: str = field(default_factory=new_id)

    def __post_init__(self) -> None:
        _positive("offer_s", self.offer_s)


@dataclass(frozen=True, kw_only=True)
class TaskAccepted:
    """Agent accepts offer ``offer_no``: the task is claimed under a lease of ``lease_s``."""

    machine_id: str
    offer_no: int
    lease_s: float = DEFAULT_LEASE_S
    event_id: str = field(default_factory=new_id)

    def __post_init__(self) -> None:
        _positive("lease_s", self.lease_s)


@dataclass(frozen=True, kw_only=True)
class TaskDeclined:
    """Agent declines offer ``offer_no``; the task goes back to the queue."""

    machine_id: str
    offer_no: int
    reason: str = ""
    event_id: str = field(default_factory=new_id)


@dataclass(frozen=True, kw_only=True)
class OfferTimedOut:
    """Hub's sweep: an offer was not answered in time (ignored until ``offer_until``)."""

    event_id: str = field(default_factory=new_id)


@dataclass(frozen=True, kw_only=True)
class TaskAssigned:
    """Hub sent ``task.assign`` (artifact URL) for a claim: claimed → preparing."""

    machine_id: str
    offer_no: int
    lease_s: float = DEFAULT_LEASE_S
    event_id: str = field(default_factory=new_id)

    def __post_init__(self) -> None:
        _positive("lease_s", self.lease_s)


@dataclass(frozen=True, kw_only=True)
class TaskStarted:
    """Agent started the machine on the task: → running; the lease is extended."""

    machine_id: str
    offer_no: int
    lease_s: float = DEFAULT_LEASE_S
    event_id: str = field(default_factory=new_id)

    def __post_init__(self) -> None:
        _positive("lease_s", self.lease_s)


@dataclass(frozen=True, kw_only=True)
class TaskProgressed:
    """Agent reports ``fraction`` (0..1) done; the lease is extended by ``lease_s``."""

    machine_id: str
    offer_no: int
    fraction: float
    lease_s: float = DEFAULT_LEASE_S
    event_id: str = field(default_factory=new_id)

    def __post_init__(self) -> None:
        _positive("lease_s", self.lease_s)
        if not 0.0 <= self.fraction <= 1.0:
            raise InvalidInput(f"fraction must be 0..1, got {self.fraction!r}")


@dataclass(frozen=True, kw_only=True)
class TaskCompleted:
    """Agent finished the task: → done, once; ``grams`` of material, ``machine_hours`` used."""

    machine_id: str
    offer_no: int
    grams: float
    machine_hours: float
    event_id: str = field(default_factory=new_id)

    def __post_init__(self) -> None:
        if self.grams < 0:
            raise InvalidInput(f"grams must be >= 0, got {self.grams!r}")
        if self.machine_hours < 0:
            raise InvalidInput(f"machine_hours must be >= 0, got {self.machine_hours!r}")


def completion_problem(
    assigned_sha256: str | None,
    expected_grams: float,
    expected_s: float,
    event_sha256: str,
    grams: float,
    machine_s: float,
) -> str | None:
    """Why a reported completion cannot be credited, None if it can. ``assigned_sha256`` is
    the file the hub assigned for that offer (None: no G-code was assigned); the agent must
    report that file's sha256, grams in 0..3x the analysis + 20 g and machine seconds in
    0..10x the estimate + 1 h (``COMPLETION_*``)."""
    if assigned_sha256 is None:
        return "no G-code was assigned for this attempt"
    if event_sha256.lower() != assigned_sha256.lower():
        return f"sha256 {event_sha256[:16]}… is not the assigned file's {assigned_sha256[:16]}…"
    max_grams = COMPLETION_GRAMS_FACTOR * max(expected_grams, 0.0) + COMPLETION_GRAMS_SLACK
    if not 0.0 <= grams <= max_grams:
        return f"grams must be 0..{max_grams:.1f} for this file, got {grams!r}"
    max_s = COMPLETION_TIME_FACTOR * max(expected_s, 0.0) + COMPLETION_TIME_SLACK_S
    if not 0.0 <= machine_s <= max_s:
        return f"machine_s must be 0..{max_s:.0f} for this file, got {machine_s!r}"
    return None


@dataclass(frozen=True, kw_only=True)
class TaskFailed:
    """Agent could not do the task (refused artifact, machine error, …): the attempt fails;
    ``cause`` is the agent's reason code (None from an older agent: recorded as unknown)."""

    machine_id: str
    offer_no: int
    reason: str = ""
    cause: FailureCause | None = None
    event_id: str = field(default_factory=new_id)


@dataclass(frozen=True, kw_only=True)
class TaskReleased:
    """Agent hands back the task it holds: it stopped and made the machine safe. The attempt
    ends without counting against ``max_attempts``; the task is queued again at once."""

    machine_id: str
    offer_no: int
    reason: str = ""
    event_id: str = field(default_factory=new_id)


@dataclass(frozen=True, kw_only=True)
class LeaseExpired:
    """Hub's sweep: the holder's lease ran out (ignored if it was extended meanwhile)."""

    event_id: str = field(default_factory=new_id)


@dataclass(frozen=True, kw_only=True)
class MachineWentOffline:
    """Hub saw ``machine_id`` go offline (status or its agent's Last Will)."""

    machine_id: str
    event_id: str = field(default_factory=new_id)


@dataclass(frozen=True, kw_only=True)
class TaskRejected:
    """The requester sent a done task back (issue 11): failed print, wrong material, damaged.
    done -> queued, once per task; the done attempt stays recorded against its machine."""

    reason: str
    rejected_by: str = ""
    event_id: str = field(default_factory=new_id)

    def __post_init__(self) -> None:
        if not self.reason:
            raise InvalidInput("reason must not be empty")


@dataclass(frozen=True, kw_only=True)
class TaskCancelled:
    """Someone cancelled the task (or its job); any non-final state → cancelled."""

    reason: str = ""
    event_id: str = field(default_factory=new_id)


TaskEvent = (
    TaskOffered
    | TaskAccepted
    | TaskDeclined
    | OfferTimedOut
    | TaskAssigned
    | TaskStarted
    | TaskProgressed
    | TaskCompleted
    | TaskFailed
    | TaskReleased
    | LeaseExpired
    | MachineWentOffline
    | TaskCancelled
    | TaskRejected
)

# Events an agent sends about the offer it holds; the rest come from the hub itself.
AgentEvent = (
    TaskAccepted
    | TaskDeclined
    | TaskAssigned
    | TaskStarted
    | TaskProgressed
    | TaskCompleted
    | TaskFailed
    | TaskReleased
)


def event_kind(event: TaskEvent) -> str:
    """The dotted name of an event as recorded in the store, e.g. ``task.completed``."""
    return EVENT_KINDS[type(event)]


EVENT_KINDS: dict[type, str] = {
    TaskOffered: "task.offered",
    TaskAccepted: "task.accepted",
    TaskDeclined: "task.declined",
    OfferTimedOut: "task.offer_timed_out",
    TaskAssigned: "task.assigned",
    TaskStarted: "task.started",
    TaskProgressed: "task.progress",
    TaskCompleted: "task.completed",
    TaskFailed: "task.failed",
    TaskReleased: "task.released",
    LeaseExpired: "task.lease_expired",
    MachineWentOffline: "machine.offline",
    TaskCancelled: "task.cancelled",
    TaskRejected: "task.rejected",
}
