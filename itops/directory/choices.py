"""People's states, the kinds and states of dated directory actions, batch states, CSV columns."""
from __future__ import annotations

import enum


class PersonState(enum.StrEnum):
    PENDING = "pending"      # onboarded, start date not reached: no account yet
    ACTIVE = "active"
    LEAVING = "leaving"      # has an end date; the account still works until then
    DISABLED = "disabled"    # account disabled, deleted after the grace period unless restored
    DELETED = "deleted"

    @property
    def label(self) -> str:
        return self.value.capitalize()


# People whose account should exist and work.
LIVE_STATES = frozenset({PersonState.ACTIVE, PersonState.LEAVING})


class ActionKind(enum.StrEnum):
    ONBOARD = "onboard"
    MOVE = "move"
    OFFBOARD = "offboard"    # the end date: disable the account
    DISABLE = "disable"      # disable at once (reconcile of an orphan, an admin's decision)
    DELETE = "delete"        # after the grace period
    RESTORE = "restore"      # a disabled account back to work, within the grace period

    @property
    def label(self) -> str:
        return self.value.capitalize()

    @property
    def removes_access(self) -> bool:
        """What the mass-change guard counts."""
        return self in (ActionKind.OFFBOARD, ActionKind.DISABLE, ActionKind.DELETE)


class ActionState(enum.StrEnum):
    PENDING = "pending"      # waits for its effective date (and, after a failure, its next attempt)
    HELD = "held"            # part of a batch waiting for an administrator's approval
    DONE = "done"
    FAILED = "failed"        # needs a person: refused by the directory or out of attempts
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        return self.value.capitalize()


OPEN_ACTION_STATES = frozenset({ActionState.PENDING, ActionState.HELD})


class BatchState(enum.StrEnum):
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    APPLIED = "applied"


class BatchKind(enum.StrEnum):
    CSV_IMPORT = "csv_import"
    RUN_DUE = "run_due"
    RECONCILE = "reconcile"
    SCIM = "scim"


# Retry of actions the directory could not take (unreachable, busy): 1, 2, 4 ... minutes, at most an hour.
RETRY_BASE_SECONDS = 60
RETRY_MAX_SECONDS = 3600
MAX_ATTEMPTS = 12

# The HR CSV: what import-csv reads (the first row names the columns, in any order).
CSV_COLUMNS = ("employee_number", "given_name", "family_name", "preferred_name", "email", "department", "title",
               "manager_employee_number", "location", "start_date", "end_date")
CSV_REQUIRED = ("employee_number", "given_name", "family_name", "start_date")
