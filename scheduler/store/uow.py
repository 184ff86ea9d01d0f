"""One database transaction with every repository's operations on it.

The embedded runner and the scheduler service do all their reading and writing through a
unit of work: ``with store.unit_of_work() as uow: ...`` commits when the block ends and
rolls back if it raises, so a decision's new state, events and commands are stored
together or not at all. The repositories are mixins so callers see one flat API.
"""

from __future__ import annotations

from collections.abc import Callable

from treadle.scheduler.store.attempt_details_repo import AttemptDetailsRepository
from treadle.scheduler.store.audit_repo import AuditRepository
from treadle.scheduler.store.broker_repo import BrokerRepository
from treadle.scheduler.store.definition_repo import DefinitionRepository
from treadle.scheduler.store.emergency_repo import EmergencyStopRepository
from treadle.scheduler.store.event_repo import EventRepository
from treadle.scheduler.store.flow_repo import FlowRepository
from treadle.scheduler.store.inquiry_repo import InquiryRepository
from treadle.scheduler.store.keystore_repo import KeystoreRepository
from treadle.scheduler.store.lifecycle_repo import LifecycleRepository
from treadle.scheduler.store.observation_repo import ObservationRepository
from treadle.scheduler.store.queue_repo import QueueRepository
from treadle.scheduler.store.rate_repo import RateWindowRepository
from treadle.scheduler.store.retention_repo import RetentionRepository
from treadle.scheduler.store.rule_repo import RuleRepository
from treadle.scheduler.store.run_overview import RunOverviewRepository
from treadle.scheduler.store.run_repo import RunRepository
from treadle.scheduler.store.run_secrets_repo import RunSecretsRepository
from treadle.scheduler.store.schedule_repo import ScheduleRepository
from treadle.scheduler.store.token_repo import TokenRepository
from treadle.scheduler.store.webhook_repo import WebhookRepository


class UnitOfWork(
    RunRepository,
    RunOverviewRepository,
    QueueRepository,
    AttemptDetailsRepository,
    InquiryRepository,
    DefinitionRepository,
    KeystoreRepository,
    RunSecretsRepository,
    EventRepository,
    RetentionRepository,
    BrokerRepository,
    TokenRepository,
    AuditRepository,
    RateWindowRepository,
    WebhookRepository,
    ScheduleRepository,
    FlowRepository,
    RuleRepository,
    ObservationRepository,
    LifecycleRepository,
    EmergencyStopRepository,
):
    """Runs, work queues, what attempts were given and printed, inquiries, definitions,
    the keystore and runs' secrets, events, retention, the brokers' last seen
    incarnations, API tokens, the audit log, webhooks,
    schedules, flow control, rules, the latest observations of the broker and workers,
    lifecycle events with their deliveries, and the emergency stops, in one transaction."""

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once this transaction has committed (not if it rolls back).

        In-memory caches of what a transaction writes must only see committed data:
        another process may reach the same run version with different content after a
        rollback here.
        """
        self._after_commit.append(callback)

    def committed(self) -> None:
        """Called by the store after the commit: runs the registered callbacks, in order."""
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()
