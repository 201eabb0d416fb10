"""The process runtime's isolation of a root worker's child: who it may run as."""

from __future__ import annotations

import pytest

from workers.agent import RuntimeFailure
from workers.agent._runtime_process import child_isolation


def test_an_unknown_or_root_user_is_refused_before_anything_starts() -> None:
    with pytest.raises(RuntimeFailure, match="no user 'no-such-user-aob' on this host"):
        child_isolation("no-such-user-aob")
    with pytest.raises(RuntimeFailure, match="'root' is root; name another user or leave it unset"):
        child_isolation("root")


def test_nobody_and_the_capability_less_default_make_a_pre_exec_step() -> None:
    assert callable(child_isolation("nobody"))
    assert callable(child_isolation(None))
