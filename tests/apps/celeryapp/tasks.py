"""The Celery app of the tests, as users write one: the broker from the environment
(``sarge config APP CELERY_BROKER_URL=redis://...``), a task that takes a while and
says when it started and when it finished (files in $SARGE_DATA_DIR, which outlives
deploys), and a beat schedule."""

import os
import time

from celery import Celery

app = Celery("tasks", broker=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:1/0"))
app.conf.beat_schedule = {"tick": {"task": "tasks.tick", "schedule": 2.0}}
app.conf.broker_connection_retry_on_startup = True

DATA = os.environ.get("SARGE_DATA_DIR", ".")


def _mark(folder, name):
    os.makedirs(os.path.join(DATA, folder), exist_ok=True)
    with open(os.path.join(DATA, folder, name), "w") as f:
        f.write(f"{os.getpid()} {os.environ.get('SARGE_INSTANCE')}\n")


@app.task
def slow(name, seconds=5, until=None):
    """Take ``seconds``; with ``until``, end as soon as the file of that name appears in
    $SARGE_DATA_DIR (a job waiting on something outside), ``seconds`` at most."""
    _mark("started", name)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if until and os.path.exists(os.path.join(DATA, until)):
            break
        time.sleep(0.1)
    _mark("done", name)
    return name


@app.task
def tick():
    return time.time()
