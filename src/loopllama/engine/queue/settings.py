"""Worker settings for the PostgreSQL job queue (`LOOPLLAMA_WORKER_*`).

The timings trade recovery speed against false alarms. A worker that dies without a word
(SIGKILL, a lost machine) stops heart-beating; once its heartbeat is `stalled_after` seconds old
the next sweep (every `sweep_every` seconds, by whichever worker gets there first) hands its
runs to live workers: about `stalled_after` + `sweep_every` seconds after the death. A live
worker whose event loop is blocked for longer than `stalled_after` is taken for dead too; its
late writes are then refused (every engine write is fenced on the run's attempt number).
"""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    grace: float = Field(
        10.0,
        ge=0,
        validation_alias=AliasChoices("LOOPLLAMA_WORKER_GRACE"),
        description="Seconds a stopping worker (SIGTERM) lets its runs go on before handing "
        "them back to the queue, where other workers resume them.",
    )
    heartbeat: float = Field(
        2.0,
        gt=0,
        validation_alias=AliasChoices("LOOPLLAMA_WORKER_HEARTBEAT"),
        description="Seconds between a worker's heartbeats.",
    )
    stalled_after: float = Field(
        10.0,
        gt=0,
        validation_alias=AliasChoices("LOOPLLAMA_WORKER_STALLED_AFTER"),
        description="A worker whose last heartbeat is older than this many seconds is taken "
        "for dead and its runs are resumed elsewhere. Keep it several heartbeats long.",
    )
    sweep_every: float = Field(
        2.0,
        gt=0,
        validation_alias=AliasChoices("LOOPLLAMA_WORKER_SWEEP_EVERY"),
        description="Seconds between sweeps for dead workers' runs and overdue pauses.",
    )
    poll_interval: float = Field(
        0.5,
        gt=0,
        validation_alias=AliasChoices("LOOPLLAMA_WORKER_POLL_INTERVAL"),
        description="Seconds between polls for jobs that no notification announces (a resumed "
        "run whose previous job still held its lock, a run handed back, a pause deadline).",
    )
    queue_pool_size: int = Field(
        4,
        ge=2,
        validation_alias=AliasChoices("LOOPLLAMA_WORKER_QUEUE_POOL_SIZE"),
        description="Connections the queue itself keeps open per worker process (besides the "
        "LISTEN connection and the engine's own pool).",
    )
