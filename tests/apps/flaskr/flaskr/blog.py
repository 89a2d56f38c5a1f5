from flask import Blueprint, abort, request

from .db import get_db

bp = Blueprint("blog", __name__)


@bp.route("/")
def index():
    posts = get_db().execute("SELECT title, body FROM post ORDER BY id").fetchall()
    return "".join(f"{post['title']}: {post['body']}\n" for post in posts)


@bp.route("/create", methods=("POST",))
def create():
    title = request.form.get("title")
    body = request.form.get("body", "")
    if not title:
        abort(400, "Title is required.")
    db = get_db()
    db.execute("INSERT INTO post (title, body) VALUES (?, ?)", (title, body))
    db.commit()
    return f"created {title}\n", 201
