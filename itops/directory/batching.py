"""What one run of due steps shares, so that a thousand joiners cost less than a thousand separate steps.

- the group mappings, read once for the run, and the joiners' accounts, users and kits, read ahead;
- which mapped groups exist, asked once per group (forgotten after any failed step);
- a writer thread with its own directory connection: a step's LDAP operations are sent while the step's
  itops work (user, ticket, audit) goes on, and the step waits for them before it is committed, so each
  step still succeeds or fails as a whole, in order;
- joiners' group joins, sent as one modify per group (one directory write instead of one per person).
  A step whose joins are waiting is done in itops; if its joins then fail, it goes back to waiting (or
  failed) and converges again on its next run (the account exists, the missing joins are planned again).
  Joins are sent before any step other than onboarding, and at the end of the run.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from itops.directory.ldap import DirectoryRefused, DirectoryUnreachable, Gateway, LdapOperation

ALREADY_MEMBER = "attributeOrValueExists"   # how the gateway's refusal names "already a member"


def is_join(operation: LdapOperation) -> bool:
    """A modify that only adds members to an existing group."""
    return (operation.kind == "modify" and set(operation.changes or ()) == {"member"}
            and operation.changes["member"][0] == "add")


class KnownGroups:
    """Which groups exist (lower-cased DNs), asking the directory about each group once; the planner adds
    those it creates."""

    def __init__(self, gateway: Gateway):
        self.gateway = gateway
        self.seen: set[str] = set()
        self.asked: set[str] = set()

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
    joins: dict[str, list[tuple[object, str]]] = field(default_factory=dict)   # group DN -> [(action, member DN)]
    _writer: ThreadPoolExecutor | None = None
    _pending: Future | None = None
    _step_joins: list[tuple[str, object, str]] = field(default_factory=list)
    _waiting: dict[int, object] = field(default_factory=dict)   # steps with joins in `joins`, by id

    def __post_init__(self):
        self.groups = KnownGroups(self.gateway)   # the planner adds the groups a step creates
        self.accounts: dict[str, object] = {}          # joiners' accounts read ahead, each taken by its first step
        self.users: dict[str, object] | None = None   # itops users by username, read for the run's joiners
        self.kits: dict[str, list] = {}               # kit templates by department, as read in this run
        self.result: dict | None = None                # the step's operations, for run_step to record

    # -- groups that exist

    def existing_groups(self, group_dns: list[str]) -> set[str]:
        return self.groups.existing(group_dns)

    # -- sending a step's operations

    def send(self, action, operations: list[LdapOperation], *, defer_joins: bool) -> list[LdapOperation]:
        """Start applying the operations (joins kept for later when `defer_joins`); returns all of them as
        they will have been applied once `finish` returns."""
        now = [op for op in operations if not (defer_joins and is_join(op))]
        self._step_joins = [(op.dn, action, member) for op in operations if defer_joins and is_join(op)
                            for member in op.changes["member"][1]]
        if now:
            if self._writer is None:
                self._writer = ThreadPoolExecutor(1, thread_name_prefix="directory-writer")
            self._pending = self._writer.submit(self.gateway.apply, now)
        return operations

    def finish(self) -> None:
        """Wait for the step's operations; their error (unreachable, refused) is the step's. Its joins wait
        for `send_joins` once the rest went through."""
        pending, self._pending = self._pending, None
        joins, self._step_joins = self._step_joins, []
        if pending is not None:
            pending.result()
        for group, action, member in joins:
            self.joins.setdefault(group, []).append((action, member))
            self._waiting[id(action)] = action

    def failed(self) -> None:
        """The step failed: wait for what it sent, drop its joins, forget which groups exist."""
        pending, self._pending, self._step_joins, self.result = self._pending, None, [], None
        if pending is not None:
            pending.exception()
        self.groups = KnownGroups(self.gateway)

    # -- joins

    def waiting_steps(self) -> list:
        """The steps whose joins wait to be sent."""
        return list(self._waiting.values())

    def waits_for_joins(self, action) -> bool:
        return id(action) in self._waiting

    def send_joins(self) -> dict[int, Exception]:
        """One modify per group with every waiting member; when a group's modify is refused (a member joined
        meanwhile), its members one by one. Returns the error of each step (by id) whose joins failed."""
        joins, self.joins, self._waiting = self.joins, {}, {}
        failed: dict[int, Exception] = {}
        for group, members in joins.items():
            try:
                self._apply([LdapOperation("modify", group, changes={"member": ("add", [m for _, m in members])})])
                continue
            except DirectoryRefused:
                pass
            except DirectoryUnreachable as exc:
                failed.update((id(action), exc) for action, _ in members)
                continue
            for action, member in members:
                try:
                    self._apply([LdapOperation("modify", group, changes={"member": ("add", [member])})])
                except DirectoryRefused as exc:
                    if ALREADY_MEMBER not in exc.detail:
                        failed.setdefault(id(action), exc)
                except DirectoryUnreachable as exc:
                    failed.setdefault(id(action), exc)
        return failed

    def _apply(self, operations: list[LdapOperation]) -> None:
        if self._writer is None:
            self.gateway.apply(operations)
        else:
            self._writer.submit(self.gateway.apply, operations).result()

    def close(self) -> None:
        """Stop the writer thread and close its connection."""
        if self._writer is not None:
            self._writer.submit(self.gateway.close).result()
            self._writer.shutdown()
            self._writer = None
