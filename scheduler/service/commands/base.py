"""What a command handler is: how one command type is stored and, if relayed, carried out.

Every command type of the core has exactly one handler, found by the command's type (a
test fails otherwise). A handler declares the rows the command writes in the transaction
that saves the decision (:meth:`CommandHandler.write`), and whether a command it sends to
the outbox leaves the process (``leaves_process``: the relay hands it to the publisher,
that is to the workers) or is carried out by the relay itself, in the transaction that
claims it (:meth:`CommandHandler.carry_out`: child runs and their parents).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Generic, TypeVar

from treadle.scheduler.core.commands import Command
from treadle.scheduler.store import CommandRows, UnitOfWork

if TYPE_CHECKING:
    from treadle.scheduler.service.runs import RunService
    from treadle.scheduler.service.starting import RunStarter

C = TypeVar("C", bound=Command)


@dataclass
class InProcess:
    """What the relay lends a handler carrying out a command: its transaction and services.

    ``child_runs_started`` collects the runs a batch started (the embedded runner follows
    them).
    """

    uow: UnitOfWork
    runs: RunService
    starter: RunStarter
    child_runs_started: list[str] = field(default_factory=list)


class CommandHandler(Generic[C]):
    """Stores one command type; see the module docstring. Subclasses set ``command``."""

    command: ClassVar[type[Command]]
    #: The command is stored in the outbox for the relay (a relay then has work).
    relayed: ClassVar[bool] = False
    #: Its outbox rows go to the workers (through the publisher), not to the relay's
    #: :meth:`carry_out`.
    leaves_process: ClassVar[bool] = False

    def write(self, command: C, rows: CommandRows) -> None:
        """Add the rows ``command`` writes (nothing by default: only observers see it)."""

    def carry_out(self, command: C, run_id: str, work: InProcess) -> None:
        """Carry out a relayed ``command`` that ``run_id``'s decision wrote to the outbox."""
        raise NotImplementedError(
            f"{type(command).__name__} is not carried out by the relay"
        )  # pragma: no cover - only relayed in-process commands are
