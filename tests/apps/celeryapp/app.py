"""The web side of the tests' Celery app: GET /enqueue/NAME?seconds=N&until=FILE queues
tasks.slow(NAME, N, FILE) (N: 5 by default; FILE: none)."""

import os

from flask import Flask, request
from tasks import slow

app = Flask(__name__)


@app.get("/")
def index():
    return f"celeryapp from {os.environ.get('SARGE_INSTANCE')}\n"


@app.get("/enqueue/<name>")
def enqueue(name):
    slow.delay(name, float(request.args.get("seconds", 5)), request.args.get("until"))
    return f"queued {name}\n"
