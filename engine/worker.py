"""The long-running worker: APScheduler 3.x as an alarm clock over the scheduler.

APScheduler only decides *when* to look: at the next due time, and on a regular sweep. What
is due is always read from the timers table, so nothing depends on APScheduler's job stores
or on ``misfire_grace_time`` (a wake-up missed while the process was down is simply the
catch-up of the next start). Other periodic jobs (the notification dispatcher) run in the
same worker as :class:`PeriodicJob` entries.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from opcatflow.engine.scheduler import Scheduler, TickReport

WAKE = "opcatflow-wake"
SWEEP = "opcatflow-sweep"


@dataclass(frozen=True)
class PeriodicJob:
    """Something the worker runs every ``seconds`` (one run at a time, never piled up)."""

    name: str
    func: Callable[[], object]
    seconds: float


class Worker:
    """Runs a :class:`Scheduler` until stopped.

    Args:
        scheduler: fires the due timers.
        sweep_seconds: how often to look even when no wake-up is planned (another process
            may have armed an earlier timer).
        jobs: further periodic jobs to run in this worker.
    """

    def __init__(
        self,
        scheduler: Scheduler,
        *,
        sweep_seconds: float = 60.0,
        jobs: Sequence[PeriodicJob] = (),
    ) -> None:
        self.scheduler = scheduler
        self.log = scheduler.engine.log
        self.sweep_seconds = sweep_seconds
        self.jobs = tuple(jobs)
        self.aps = BackgroundScheduler(timezone=UTC)
        self._lock = threading.Lock()
        self.reports: list[TickReport] = []

    def start(self) -> TickReport:
        """Catch up on everything that fell due while nothing ran, then start the alarms.

        Returns:
            The catch-up report (also logged as ``deadlines_caught_up``).
        """
        report = self.wake()
        self.log.info("deadlines_caught_up", **report.summary())
        job_options: dict[str, Any] = {
            "max_instances": 1,
            "coalesce": True,
            "misfire_grace_time": None,
            "replace_existing": True,
        }
        self.aps.add_job(self.wake, "interval", seconds=self.sweep_seconds, id=SWEEP, **job_options)
        for job in self.jobs:
            self.aps.add_job(job.func, "interval", seconds=job.seconds, id=job.name, **job_options)
        self.aps.start()
        self._plan_wake()
        self.log.info(
            "worker_started",
            sweep_seconds=self.sweep_seconds,
            jobs=[job.name for job in self.jobs],
            calendar=self.scheduler.engine.settings.calendar.description,
        )
        return report

    def wake(self) -> TickReport:
        """Process what is due now, then plan the next wake-up."""
        with self._lock:
            report = self.scheduler.tick()
            self.reports.append(report)
            del self.reports[:-10]
        if self.aps.running:
            self._plan_wake()
        return report

    def next_wake(self) -> datetime | None:
        job = self.aps.get_job(WAKE)
        return job.next_run_time if job is not None else None

    def _plan_wake(self) -> None:
        due = self.scheduler.next_due()
        if due is None:
            if self.aps.get_job(WAKE) is not None:
                self.aps.remove_job(WAKE)
            return
        self.aps.add_job(
            self.wake,
            "date",
            run_date=due,
            id=WAKE,
            replace_existing=True,
            misfire_grace_time=None,
        )

    def stop(self) -> None:
        """Stop the alarms; a tick under way finishes first."""
        if self.aps.running:
            self.aps.shutdown(wait=True)
        self.log.info("worker_stopped")

    def run_until(self, stop: threading.Event) -> None:
        """Start, wait until ``stop`` is set (e.g. by a signal handler), then stop."""
        self.start()
        try:
            stop.wait()
        finally:
            self.stop()
