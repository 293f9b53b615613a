"""One registry for the app's background work: it runs, names and cancels every job.

A job is one thread worker of a kind ("step", "mode", "tree", "generate", "lab-score",
"lab-run", "regex", "export", ...). Starting a job of a kind stops the running one of the same
kind (the user has moved on: its result would be thrown away). Stopping is cooperative: the
job's ``should_stop`` turns True and the engine polls it at safe points (between
integrated-gradient batches, between blocks, between generated tokens), raising
``engine.cancel.Cancelled``; the registry swallows that. A job counts as running until its
thread has really returned, so the status bar says "stopping …" while a stopped job unwinds.

Esc calls ``stop_all``: every job started with ``esc=True`` stops, wherever it was started.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from textual.message import Message

from explorer.engine.cancel import Cancelled


@dataclass(eq=False)
class Job:
    kind: str
    label: str
    """What the status bar says while it runs ("computing Gradient attribution")."""
    esc: bool
    """Esc stops it (long jobs a user starts); the next-token step is one forward pass and is not."""
    serial: int
    stop_event: threading.Event = field(default_factory=threading.Event)
    progress: tuple[int, int] | None = None
    worker: Any = None
    on_end: Callable[["Job"], None] | None = None
    """Called on the UI thread once the job's thread has returned (after any message it posted)."""

    def should_stop(self) -> bool:
        return self.stop_event.is_set()

    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()


@dataclass
class JobEnded(Message):
    """Posted from the job's thread when its function has returned (or raised)."""

    job: Job


@dataclass
class JobProgress(Message):
    job: Job
    done: int
    total: int


class JobRegistry:
    """Runs thread jobs for ``app`` and keeps the list of those still running.

    Args:
        app: the ExplorerApp (its ``run_worker`` runs them; its JobEnded handler calls ``ended``).
        on_change: called on the UI thread whenever the running set or a progress changes.
    """

    def __init__(self, app, on_change: Callable[[], None]) -> None:
        self.app = app
        self.on_change = on_change
        self.running: list[Job] = []
        self._serial = itertools.count(1)

    def start(self, kind: str, label: str, fn: Callable[[Job], None], *, esc: bool = False,
              replace: bool = True, on_end: Callable[[Job], None] | None = None) -> Job:
        """Run ``fn(job)`` in a thread; with ``replace`` a running job of the same kind is stopped first.

        ``fn`` checks ``job.should_stop()`` where it can skip work whose result would be thrown away.
        """
        if replace:
            self.stop(kind)
        job = Job(kind, label, esc, next(self._serial), on_end=on_end)

        def body() -> None:
            try:
                fn(job)
            except Cancelled:
                pass
            finally:
                self.app.post_message(JobEnded(job))

        job.worker = self.app.run_worker(body, name=label, group=f"job-{kind}-{job.serial}", thread=True,
                                         exit_on_error=False, description=label)
        self.running.append(job)
        self.on_change()
        return job

    def report(self, job: Job, done: int, total: int) -> None:
        """Thread-safe: a job says how far it is."""
        self.app.post_message(JobProgress(job, done, total))

    def progressed(self, msg: JobProgress) -> None:
        msg.job.progress = (msg.done, msg.total)
        self.on_change()

    def ended(self, job: Job) -> None:
        if job in self.running:
            self.running.remove(job)
            if job.on_end is not None:
                job.on_end(job)
            self.on_change()

    def stop(self, kind: str | None = None, *, esc_only: bool = False) -> list[Job]:
        """Ask running jobs (of ``kind``, or all) to stop; returns those that were asked."""
        asked = []
        for job in self.running:
            if (kind is None or job.kind == kind) and (job.esc or not esc_only) and not job.stopping:
                job.stop_event.set()
                asked.append(job)
        if asked:
            self.on_change()
        return asked

    def stop_all(self) -> list[Job]:
        """Esc: stop every job a user would call running (all but the next-token step)."""
        return self.stop(esc_only=True)

    def busy(self, kind: str) -> bool:
        return any(j.kind == kind and not j.stopping for j in self.running)

    def status_text(self) -> str:
        """What runs, for the status bar: "computing Attention · generating 3/20 · stopping tree"."""
        parts = []
        for job in self.running:
            text = job.label
            if job.progress is not None:
                text += f" {job.progress[0]}/{job.progress[1]}"
            parts.append(f"stopping {text}" if job.stopping else text)
        return " · ".join(parts)
