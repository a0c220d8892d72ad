"""What one run of due steps shares, so that a thousand joiners cost less than a thousand separate steps.

- the group mappings, read once for the run, and the joiners' accounts, users and kits, read ahead;
- which mapped groups exist, asked once per group (forgotten after any failed step);
- a writer thread with its own directory connection: a step's LDAP operations are sent while the step's
  itops work (user, ticket, audit) goes on, and the step waits for them before it is committed, so each
  step still succeeds or fails as a whole, in order;
- joiners' group joins, sent as one modify per group (one directory write instead of one per person).
  A step whose joins are waiting is done in itops; if its joins then fail, it goes back to waiting (or
  failed) and converges again on its next run (the account exists, the missing joins are planned again).
  Joins are sent before any step other than onboarding, and at the end of the run;
- for a run of joiners taken together (services._onboard_together), every account's operations queued on
  the writer at once; the first write that fails stops the rest (they are not sent), and the joiners are
  run again one by one;
- for a long run of due steps (tasks.run_due_steps), writer processes (WriterProcesses): ldap3 builds and
  encodes each request in Python, which in this process would wait for the GIL behind the itops side and
  leave slapd idle. Two processes, each with its own connection, keep slapd writing while this process
  writes the users, tickets and audit entries. Their adds, and those this process sends when it would
  otherwise wait (help_out), are pipelined (Gateway.apply_pipelined): several in flight on one connection,
  so that slapd writes one while the next is encoded.
"""
from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

from ldap3 import ASYNC

from itops.directory.ldap import DirectoryRefused, DirectoryUnreachable, Gateway, LdapOperation, NotSent

ALREADY_MEMBER = "attributeOrValueExists"   # how the gateway's refusal names "already a member"


def is_join(operation: LdapOperation) -> bool:
    """A modify that only adds members to an existing group."""
    return (operation.kind == "modify" and set(operation.changes or ()) == {"member"}
            and operation.changes["member"][0] == "add")


def joins_of(action, operations: list[LdapOperation]) -> list[tuple[str, object, str]]:
    """The (group DN, step, member DN) of each member a step's operations join to a group."""
    return [(op.dn, action, member) for op in operations if is_join(op) for member in op.changes["member"][1]]


def apply_unless_stopped(gateway: Gateway, stopped, operations: list[LdapOperation]) -> None:
    """Apply one joiner's operations, unless a write of the same batch failed already (`stopped`, an Event);
    a failure sets it, so the rest of the batch is not sent."""
    if stopped.is_set():
        raise NotSent("not sent: an earlier write of the batch failed")
    try:
        gateway.apply(operations)
    except Exception:
        stopped.set()
        raise


def first_error(outcomes) -> Exception | None:
    """A group's outcome from its joiners' (Gateway.apply_pipelined): the first error, if any."""
    return next((outcome for outcome in outcomes if outcome is not None), None)


class ConnectionThread:
    """One thread with a directory connection of its own (the gateway keeps one per thread), started on
    first use."""

    def __init__(self, gateway: Gateway, name: str):
        self.gateway = gateway
        self.name = name
        self._executor: ThreadPoolExecutor | None = None

    @property
    def started(self) -> bool:
        return self._executor is not None

    def submit(self, call, *args) -> Future:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix=self.name)
        return self._executor.submit(call, *args)

    def close(self) -> None:
        """After what was submitted, close the thread's connection and end the thread."""
        if self._executor is not None:
            self._executor.submit(self.gateway.close).result()
            self._executor.shutdown()
            self._executor = None


class WriterProcesses:
    """Processes that send joiners' operations during one long run of due steps; started on first use
    (a run with no joiners to take together starts none), stopped by `close`."""

    PROCESSES = 2
    MIN_BATCH = 50   # fewer joiners are sent from this process: starting the writers would cost more
    GROUP = 25       # joiners per task, their adds pipelined. Each task's trip through the pool needs the
                     # pool's threads here, which wait for the GIL behind the itops work: with 5 to a task the
                     # writers sat idle between tasks and this process sent half the adds itself

    def __init__(self, gateway: Gateway):
        self.gateway = gateway
        self._pool: ProcessPoolExecutor | None = None
        self._stopped = None
        self._queued: list[list[LdapOperation]] = []
        self._queued_future: Future | None = None   # the queued joiners' outcome, once they are sent
        self._sent: list[tuple[Future, Future, list]] = []   # this batch's groups: (the pool's, ours, the group)

    def start_batch(self) -> None:
        self._sent = []
        if self._stopped is not None:
            self._stopped.clear()

    def submit(self, operations: list[LdapOperation]) -> Future:
        """Queue one joiner's operations; they go with the next GROUP joiners (or at `send_queued`). The
        future is the group's: it fails with the group's first failed write."""
        if self._queued_future is None:
            self._queued_future = Future()
        self._queued.append(operations)
        future = self._queued_future
        if len(self._queued) >= self.GROUP:
            self.send_queued()
        return future

    def send_queued(self) -> None:
        if not self._queued:
            return
        group, future = self._queued, self._queued_future
        self._queued, self._queued_future = [], None
        sending = self._started().submit(_write_group, group)
        sending.add_done_callback(partial(_pass_on, future))
        self._sent.append((sending, future, group))

    def help_out(self) -> None:
        """Where this process would only wait for the batch: send the groups no writer has taken yet itself
        (cancelled in the pool from the last, which the writers take last), their adds pipelined, so that
        its core does not sit idle while the writers finish."""
        taken = []
        while self._sent:
            sending, future, group = self._sent[-1]
            if not sending.cancel():  # a writer has it: so have the ones before it
                break
            self._sent.pop()
            taken.append((future, group))
        taken.reverse()
        try:
            outcomes = iter(self.gateway.apply_pipelined([ops for _, group in taken for ops in group], self._stopped))
        except BaseException as exc:  # the batch waits for these futures: each must get an outcome
            for future, _ in taken:
                future.set_exception(exc)
            raise
        for future, group in taken:
            error = first_error([next(outcomes) for _ in group])
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

    def drop_queued(self) -> None:
        """Forget the joiners not sent yet (their batch failed): their future says so."""
        if self._queued_future is not None:
            self._queued_future.set_exception(NotSent("not sent: an earlier write of the batch failed"))
        self._queued, self._queued_future = [], None

    def _started(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: this process has threads and database connections a fork would copy.
            context = multiprocessing.get_context("spawn")
            self._stopped = context.Event()
            # The settings (bind password included) go to the children through the pipe, never argv or env.
            self._pool = ProcessPoolExecutor(self.PROCESSES, mp_context=context, initializer=_start_writer,
                                             initargs=(self.gateway.ldap, self.gateway.settings, self._stopped))
        return self._pool

    def close(self) -> None:
        self.drop_queued()
        self.gateway.close(ASYNC)  # the pipelined connection help_out opened in this thread
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


_writer: tuple[Gateway, object] | None = None   # in a writer process: its gateway and the shared stop flag


def _start_writer(ldap, settings, stopped) -> None:
    global _writer
    _writer = (Gateway(ldap, settings), stopped)


def _write_group(group: list[list[LdapOperation]]) -> None:
    """In a writer process: apply a group of joiners' operations (their adds pipelined), unless a write of the
    batch failed already; raises the group's first error."""
    error = first_error(_writer[0].apply_pipelined(group, _writer[1]))
    if error is not None:
        raise error


def _pass_on(future: Future, done: Future) -> None:
    """A group's outcome, from the pool's future to the one its joiners were given (a group cancelled in
    the pool is sent by `help_out`, which gives the outcome itself)."""
    if done.cancelled():
        return
    error = done.exception()
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


class KnownGroups:
    """Which groups exist (lower-cased DNs), asking the directory about each group once; the planner adds
    those it creates."""

    def __init__(self, gateway: Gateway):
        self.gateway = gateway
        self.seen: set[str] = set()
        self.asked: set[str] = set()

    def forget(self) -> None:
        """Ask again: a step failed, perhaps because a group it took for existing is gone."""
        self.seen, self.asked = set(), set()

    def existing(self, group_dns: list[str]) -> set[str]:
        unknown = [dn for dn in group_dns if dn.lower() not in self.asked]
        if unknown:
            self.seen |= self.gateway.existing_groups(unknown)
            self.asked.update(dn.lower() for dn in unknown)
        return self.seen


@dataclass
class StepRun:
    gateway: Gateway
    mappings: list
    processes: WriterProcesses | None = None   # for batches of joiners, when the run has them
    groups: KnownGroups | None = None          # which groups exist, shared by the chunks of a long run
    joins: dict[str, list[tuple[object, str]]] = field(default_factory=dict)   # group DN -> [(action, member DN)]
    _pending: Future | None = None
    _step_joins: list[tuple[str, object, str]] = field(default_factory=list)
    _waiting: dict[int, object] = field(default_factory=dict)   # steps with joins in `joins`, by id

    def __post_init__(self):
        if self.groups is None:
            self.groups = KnownGroups(self.gateway)   # the planner adds the groups a step creates
        self.accounts: dict[str, object] = {}          # joiners' accounts read ahead, each taken by its first step
        self.users: dict[str, object] | None = None   # itops users by username, read for the run's joiners
        self.kits: dict[str, list] = {}               # kit templates by department, as read in this run
        self.result: dict | None = None                # the step's operations, for run_step to record
        self._stopped = threading.Event()              # a batch's write failed: send nothing more of it
        self._use_processes = False                    # this batch goes through `processes`
        self._writer = ConnectionThread(self.gateway, "directory-writer")

    # -- groups that exist

    def existing_groups(self, group_dns: list[str]) -> set[str]:
        return self.groups.existing(group_dns)

    # -- sending a step's operations

    def send(self, action, operations: list[LdapOperation], *, defer_joins: bool) -> list[LdapOperation]:
        """Start applying the operations (joins kept for later when `defer_joins`); returns all of them as
        they will have been applied once `finish` returns."""
        now = [op for op in operations if not (defer_joins and is_join(op))]
        self._step_joins = joins_of(action, operations) if defer_joins else []
        if now:
            self._pending = self._writer.submit(self.gateway.apply, now)
        return operations

    # -- joiners taken together

    def start_batch(self, size: int) -> None:
        self._stopped.clear()
        self._use_processes = self.processes is not None and size >= self.processes.MIN_BATCH
        if self._use_processes:
            self.processes.start_batch()

    def submit(self, operations: list[LdapOperation]) -> Future | None:
        """Queue a joiner's operations, all but its group joins (None: nothing to send)."""
        now = [op for op in operations if not is_join(op)]
        if not now:
            return None
        if self._use_processes:
            return self.processes.submit(now)
        return self._writer.submit(apply_unless_stopped, self.gateway, self._stopped, now)

    def send_queued(self) -> None:
        """Send what `submit` still holds back (the batch's last joiners)."""
        if self._use_processes:
            self.processes.send_queued()

    def help_out(self) -> None:
        """This process is about to wait for the batch's writes: it sends what no writer has taken yet."""
        if self._use_processes:
            self.processes.help_out()

    def drop_queued(self) -> None:
        """The batch failed before all of it was sent: what is held back is not sent."""
        if self._use_processes:
            self.processes.drop_queued()

    def keep_joins(self, action, operations: list[LdapOperation]) -> None:
        """A joiner taken together is done: its group joins wait for `send_joins`."""
        self._wait_for(joins_of(action, operations))

    def _wait_for(self, joins: list[tuple[str, object, str]]) -> None:
        for group, action, member in joins:
            self.joins.setdefault(group, []).append((action, member))
            self._waiting[id(action)] = action

    def finish(self) -> None:
        """Wait for the step's operations; their error (unreachable, refused) is the step's. Its joins wait
        for `send_joins` once the rest went through."""
        pending, self._pending = self._pending, None
        joins, self._step_joins = self._step_joins, []
        if pending is not None:
            pending.result()
        self._wait_for(joins)

    def failed(self) -> None:
        """The step failed: wait for what it sent, drop its joins, forget which groups exist."""
        pending, self._pending, self._step_joins, self.result = self._pending, None, [], None
        if pending is not None:
            pending.exception()
        self.groups.forget()

    # -- joins

    def waiting_steps(self) -> list:
        """The steps whose joins wait to be sent."""
        return list(self._waiting.values())

    def waits_for_joins(self, action) -> bool:
        return id(action) in self._waiting

    def take_joins(self) -> dict[str, list[tuple[object, str]]]:
        """The waiting joins, group DN -> [(step, member DN)], which this run no longer sends."""
        joins, self.joins, self._waiting = self.joins, {}, {}
        return joins

    def send_joins(self) -> dict[object, Exception]:
        """Send the waiting joins now (see `send_member_joins`)."""
        return send_member_joins(self._apply, self.take_joins())

    def _apply(self, operations: list[LdapOperation]) -> None:
        if self._writer.started:
            self._writer.submit(self.gateway.apply, operations).result()
        else:
            self.gateway.apply(operations)

    def close(self) -> None:
        """Stop the writer thread and close its connection."""
        self._writer.close()


def send_member_joins(apply, joins: dict[str, list[tuple[object, str]]]) -> dict[object, Exception]:
    """One modify per group with all its new members; when a group's modify is refused (a member joined
    meanwhile), its members one by one. `apply` sends a list of operations. Returns the error of each step
    whose joins failed."""
    failed: dict[object, Exception] = {}
    for group, members in joins.items():
        try:
            apply([LdapOperation("modify", group, changes={"member": ("add", [m for _, m in members])})])
            continue
        except DirectoryRefused:
            pass
        except DirectoryUnreachable as exc:
            failed.update((step, exc) for step, _ in members)
            continue
        for step, member in members:
            try:
                apply([LdapOperation("modify", group, changes={"member": ("add", [member])})])
            except DirectoryRefused as exc:
                if ALREADY_MEMBER not in exc.detail:
                    failed.setdefault(step, exc)
            except DirectoryUnreachable as exc:
                failed.setdefault(step, exc)
    return failed


class JoinsInFlight:
    """A long run's group joins (tasks.run_due_steps), sent from a thread with its own connection while the
    next chunk goes on: each join is a write of the group entry (and, where the directory keeps memberOf with
    the memberof overlay, of every member's entry too), which slapd does while this process and the writer
    processes work on the next accounts. The joins' steps are committed waiting (services.JOINS_GRACE), and
    done once their joins went through."""

    def __init__(self, gateway: Gateway):
        self.gateway = gateway
        self._sender = ConnectionThread(gateway, "directory-joins")
        self._out: tuple[Future, list[int], object] | None = None   # (the sending, its steps' ids, their run's time)

    def send(self, joins: dict[str, list[tuple[int, str]]], step_ids: list[int], when) -> None:
        """Start sending these joins (members keyed by their step's id); `outcome` must be taken first."""
        if self._out is not None:
            raise RuntimeError("the previous joins' outcome has not been taken")
        if not step_ids:
            return
        self._out = (self._sender.submit(send_member_joins, self.gateway.apply, joins), step_ids, when)

    def outcome(self) -> tuple[list[int], dict[int, Exception], object]:
        """Wait for the joins sent last: (their steps' ids, the error of each step whose joins failed, the
        time of the run that made them). Nothing out: ([], {}, None)."""
        if self._out is None:
            return [], {}, None
        (future, step_ids, when), self._out = self._out, None
        return step_ids, future.result(), when

    def close(self) -> None:
        """Let the joins out finish (their steps stay waiting if nobody took the outcome), then close the
        thread's connection."""
        self._out = None
        self._sender.close()


class AccountsAhead:
    """The next chunk's joiners' accounts, searched for from a thread (its own connection) while this chunk
    is committed and the next one loaded. A hint: the next chunk searches itself for any name it does not
    cover, and a search that failed covers none."""

    def __init__(self, gateway: Gateway):
        self.gateway = gateway
        self._reader = ConnectionThread(gateway, "directory-read-ahead")
        self._ahead: tuple[set[str], Future] | None = None

    def start(self, usernames) -> None:
        names = {name.lower() for name in usernames if name}
        if not names:
            return
        self._ahead = (names, self._reader.submit(self.gateway.find_accounts, names))

    def take(self) -> tuple[set[str], dict]:
        """(the names searched for, username -> account or None), or nothing if no search was started."""
        if self._ahead is None:
            return set(), {}
        (names, future), self._ahead = self._ahead, None
        try:
            return names, future.result()
        except DirectoryUnreachable:
            return set(), {}

    def close(self) -> None:
        """Let a search still out finish unused, then close the thread's connection."""
        self._ahead = None
        self._reader.close()


class LongRun:
    """What the chunks of one long run of due steps (tasks.run_due_steps) share: the writer processes,
    which groups exist, the group joins in flight and the next chunk's accounts read ahead."""

    def __init__(self, gateway: Gateway):
        self.writers = WriterProcesses(gateway)   # started only if a chunk has joiners to take together
        self.groups = KnownGroups(gateway)        # asked once for the whole run
        self.joins = JoinsInFlight(gateway)       # a chunk's group joins go out while the next chunk runs
        self.accounts = AccountsAhead(gateway)

    def close(self) -> None:
        """Stop the threads and processes (joins still out are waited for; their steps stay waiting)."""
        self.accounts.close()
        self.joins.close()
        self.writers.close()
