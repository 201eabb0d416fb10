"""The coordinator process: turns completion signals into the next tokens, runs timers and records to Postgres."""

from coordinator._reconciler import Reconciler
from coordinator._recorder import Recorder
from coordinator._schedules import Scheduler
from coordinator._service import Coordinator, run_coordinator

__all__ = ["Coordinator", "Reconciler", "Recorder", "Scheduler", "run_coordinator"]
