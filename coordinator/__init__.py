"""The coordinator: turns completion signals into the next tokens; starts, patches, resumes, cancels runs."""

from coordinator._control import cancel_run
from coordinator._patch import PatchOutcome, patch_run
from coordinator._recorder import Recorder
from coordinator._resume import ResumeOutcome, resume_run
from coordinator._service import Coordinator, run_coordinator
from coordinator._start import RunStart, start_run

__all__ = [
    "Coordinator",
    "PatchOutcome",
    "Recorder",
    "ResumeOutcome",
    "RunStart",
    "cancel_run",
    "patch_run",
    "resume_run",
    "run_coordinator",
    "start_run",
]
