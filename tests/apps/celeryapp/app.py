"""The web side of the tests' Celery app: GET /enqueue/NAME?seconds=N queues
tasks.slow(NAME, N) (N: 5 by default)."""

import os

from flask import Flask, request
from tasks import slow

app = Flask(__name__)


@app.get("/")
def index():
    return f"celeryapp from {os.environ.get('SARGE_INSTANCE')}\n"


@app.get("/enqueue/<name>")
def enqueue(name):
    slow.delay(name, float(request.args.get("seconds", 5)))
    return f"queued {name}\n"
