"""``aob up --scale``: several processes of a service on one machine, to try the stack scaled out.

``coordinator=2,worker.builtin=3,orchestrator=2,fanout=2`` runs that many of each. Coordinators and workers share
the work through Redis (shard leases, consumer groups); extra API and fanout processes listen on ports 10 apart
(``AOB_API_PORT`` + 10, + 20, ..., clear of the fanout's default next to the API's), as separate instances behind a
load balancer would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from common.errors import ConfigError
from devstack.supervisor import ChildSpec

MAX_SCALE = 16
# The port variable each listening service's extra instances move along, from the stack's own port, and the step.
_PORTS = {"orchestrator": "AOB_API_PORT", "fanout": "AOB_FANOUT_PORT"}
PORT_STEP = 10


def parse_scale(value: str, services: Sequence[tuple[str, ...]]) -> dict[tuple[str, ...], int]:
    """``name=count`` items (a worker as ``worker.<type>``) naming services of ``services``.

    Raises ``ConfigError`` saying which item is wrong and what was expected.
    """
    scale: dict[tuple[str, ...], int] = {}
    known = {".".join(service): service for service in services}
    for item in filter(None, (part.strip() for part in value.split(","))):
        name, _, count = item.partition("=")
        service = known.get(name.strip())
        if service is None:
            raise ConfigError(f"--scale {item!r}: unknown service {name.strip()!r} (known: {', '.join(known)})")
        if not count.strip().isdigit() or not 1 <= int(count) <= MAX_SCALE:
            raise ConfigError(f"--scale {item!r}: expected a count from 1 to {MAX_SCALE}, got {count.strip()!r}")
        scale[service] = int(count)
    return scale


def scaled_children(
    services: Sequence[tuple[str, ...]], scale: Mapping[tuple[str, ...], int], ports: Mapping[str, int]
) -> list[ChildSpec]:
    """One child per instance: ``coordinator``, ``coordinator #2``, ...; extra API and fanout instances listen
    ``PORT_STEP`` apart from ``ports`` (by variable name)."""
    children = []
    for service in services:
        spec = ChildSpec.for_service(service)
        for instance in range(scale.get(service, 1)):
            if instance == 0:
                children.append(spec)
                continue
            env = {}
            variable = _PORTS.get(service[0])
            if variable is not None:
                env[variable] = str(ports[variable] + PORT_STEP * instance)
            children.append(ChildSpec(f"{spec.name} #{instance + 1}", spec.argv, env))
    return children
