"""The coordinator: turns completion signals into the next tokens; starts, cancels and records runs."""

from coordinator._control import cancel_run
from coordinator._recorder import Recorder
from coordinator._service import Coordinator, run_coordinator
from coordinator._start import RunStart, start_run

__all__ = ["Coordinator", "Recorder", "RunStart", "cancel_run", "run_coordinator", "start_run"]
