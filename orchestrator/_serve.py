"""Serving the API with uvicorn (uvloop, httptools) until cancelled: in this process, or as ``api_workers``
processes that accept on one listening socket the parent binds."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import sys
from collections.abc import Coroutine, Sequence
from multiprocessing.process import BaseProcess
from typing import Any

import uvicorn

from common.errors import AobError
from common.serving import serve_until_cancelled
from common.settings import ApiSettings
from orchestrator._app import create_app

logger = logging.getLogger(__name__)

# Longest a worker process may take to finish its requests after SIGTERM before it is killed.
_WORKER_STOP_TIMEOUT_S = 30.0
_WORKER_POLL_S = 0.5
_PR_SET_PDEATHSIG = 1


def api_workers(settings: ApiSettings) -> int:
    """How many API processes to run: ``api_workers``, or one per core when it is 0."""
    return settings.api_workers or os.cpu_count() or 1


def uvicorn_config(settings: ApiSettings) -> uvicorn.Config:
    """The uvicorn configuration of one API process (its app built from ``settings``)."""
    return uvicorn.Config(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        lifespan="on",
    )


def run_api(settings: ApiSettings) -> Coroutine[Any, Any, None]:
    """Serve the API on ``settings.api_host:api_port``: the returned coroutine serves until cancelled and then shuts
    down gracefully.

    With more than one worker, this call binds the socket and forks the workers (call it before the event loop
    runs: the workers inherit the modules imported so far, so they start at once), and the coroutine supervises
    them: a worker that exits ends the others and raises ``AobError``, so whatever supervises this process (``aob
    up``, compose) restarts all.
    """
    workers = api_workers(settings)
    if workers == 1:
        return serve_until_cancelled(uvicorn_config(settings), "orchestrator")
    sock = _bind(settings.api_host, settings.api_port)
    fork = multiprocessing.get_context("fork")
    processes = [
        fork.Process(target=serve_worker, args=(settings, sock, os.getpid()), name=f"aob-api-{index}")
        for index in range(workers)
    ]
    for process in processes:
        process.start()
    logger.info("orchestrator: %d API processes on %s:%d", workers, settings.api_host, sock.getsockname()[1])
    return _supervise(processes, sock)


async def _supervise(processes: Sequence[BaseProcess], sock: socket.socket) -> None:
    try:
        while True:
            for process in processes:
                if not process.is_alive():
                    raise AobError(f"API process {process.name} exited with code {process.exitcode}")
            await asyncio.sleep(_WORKER_POLL_S)
    finally:
        logger.info("orchestrator stopping %d API processes", len(processes))
        await asyncio.shield(asyncio.to_thread(_stop_all, processes))
        sock.close()


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise AobError(f"orchestrator: cannot listen on {host}:{port}: {exc}") from exc
    sock.set_inheritable(True)
    return sock


def _stop_all(processes: Sequence[BaseProcess]) -> None:
    # SIGTERM makes uvicorn stop accepting and finish its requests; a worker that does not finish in time is killed.
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        if process.pid is not None:
            process.join(_WORKER_STOP_TIMEOUT_S)
        if process.is_alive():
            logger.warning("API process %s did not stop in %.0f s: killed", process.name, _WORKER_STOP_TIMEOUT_S)
            process.kill()
            process.join()


def serve_worker(settings: ApiSettings, sock: socket.socket, parent_pid: int) -> None:
    """One API worker process: serve on the inherited ``sock`` until SIGTERM (or until its parent dies)."""
    _die_with_parent(parent_pid)
    uvicorn.Server(uvicorn_config(settings)).run(sockets=[sock])


def _die_with_parent(parent_pid: int) -> None:
    # A parent killed with SIGKILL cannot stop its workers: Linux sends them SIGTERM instead, so none keeps serving
    # the port a restarted parent must bind again.
    if sys.platform == "linux":
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent_pid:
        sys.exit(0)
