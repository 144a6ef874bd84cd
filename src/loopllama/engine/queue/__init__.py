"""The scale-out engine: runs dispatched through a PostgreSQL job queue (procrastinate) to
worker processes on any number of machines.

    settings.py    WorkerSettings: grace period, heartbeat and stall timings (LOOPLLAMA_WORKER_*)
    jobs.py        the queue's SQL on the caller's connection: defer in the caller's
                   transaction, hand back stalled jobs, find runs without a job
    dispatcher.py  QueueDispatcher: the Dispatcher protocol on the queue, the worker and its
                   supervisor, the sweeps
    process.py     `loopllama worker`: signals, grace period, exit status
"""

from loopllama.engine.queue.dispatcher import QueueDispatcher
from loopllama.engine.queue.settings import WorkerSettings

__all__ = ["QueueDispatcher", "WorkerSettings"]
