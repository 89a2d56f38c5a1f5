"""The example's Celery app: its broker is CELERY_BROKER_URL (RabbitMQ's, from `sarge
HOME service add APP rabbitmq`; Redis's when the app has Redis alone), its results go
to Redis (REDIS_URL, from `sarge HOME service add APP redis`)."""

import os
import time

from celery import Celery

app = Celery("tasks", broker=os.environ["CELERY_BROKER_URL"],
             backend=os.environ.get("REDIS_URL"))
app.conf.broker_connection_retry_on_startup = True
app.conf.result_expires = 3600
app.conf.beat_schedule = {"heartbeat": {"task": "tasks.heartbeat", "schedule": 10.0}}


@app.task
def count_words(text: str) -> int:
    """A task that takes a moment."""
    time.sleep(1)
    return len(text.split())


@app.task
def heartbeat() -> float:
    """Sent by beat every 10 seconds; its time is the last result kept in Redis."""
    return time.time()
