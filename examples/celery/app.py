"""The example's web side (Flask, served by gunicorn): POST /count queues
tasks.count_words with the request's body and answers the task's id; GET /result/ID
says how the task is doing; GET /health is the health check."""

from flask import Flask, jsonify, request
from tasks import app as celery
from tasks import count_words

app = Flask(__name__)


@app.post("/count")
def count():
    task = count_words.delay(request.get_data(as_text=True))
    return jsonify(id=task.id), 202


@app.get("/result/<task_id>")
def result(task_id):
    task = celery.AsyncResult(task_id)
    return jsonify(id=task_id, state=task.state,
                   result=task.result if task.successful() else None)


@app.get("/health")
def health():
    return "ok\n"
