"""Seed 002's cancellation token: how a running job's handler learns that someone asked to
cancel it (``POST /api/v1/queue/jobs/{id}/cancel``, ``jobpipes queue cancel ID``).

The request is a column on the job (``cancel_requested_at``); the worker's grouped heartbeat
reads it in the same statement that proves the worker alive (at once on PostgreSQL, where
the request NOTIFYs the worker; else within ``heartbeatSeconds``) and sets the job's token.
A handler checks it where it can stop cleanly::

    @job_handler(BuildReportJob)
    async def build_report(job, progress):
        for page in pages:
            progress.cancellation.raise_if_requested()   # or: if progress.cancellation.requested
            ...

A handler that never looks is cancelled by the engine (``asyncio`` cancellation) after
``jobsWorker.cancelGraceSeconds``. Either way the attempt ends ``Cancelled``.
"""

from __future__ import annotations

import asyncio
import threading

from core.errors import JobError


class JobCancelled(JobError):
    """The job's cancellation was requested (raised by ``Cancellation.raise_if_requested``)."""


class Cancellation:
    """Set once, from any thread (the worker's writer thread); read and awaited on the loop."""

    def __init__(self) -> None:
        self._set = threading.Event()
        self._lock = threading.Lock()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    @property
    def requested(self) -> bool:
        return self._set.is_set()

    def raise_if_requested(self) -> None:
        if self._set.is_set():
            raise JobCancelled("cancellation requested")

    async def wait(self) -> None:
        """Return once cancellation is requested."""
        event = asyncio.Event()
        with self._lock:
            if self._set.is_set():
                return
            self._waiters.append((asyncio.get_running_loop(), event))
        await event.wait()

    def request(self) -> None:
        with self._lock:
            if self._set.is_set():
                return
            self._set.set()
            waiters, self._waiters = self._waiters, []
        for loop, event in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)
