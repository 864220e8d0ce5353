"""A bare Flask app for bench/pages.py: each page renders the HTML our page gave (read
from the files the bench names), through Jinja, with nothing else — no database, no
session, no headers of ours: the least a Flask page costs.

Each page is compiled once, as Flask's `render_template` keeps a template file's
compiled form (`render_template_string` would compile it again for every request:
0.5 ms of a 0.55 ms page in one process here)."""

import os

from flask import Flask, render_template

app = Flask(__name__)
PAGES = {}
for name, path in (item.split("=", 1) for item in os.environ["BENCH_PAGES"].split(",")):
    with open(path, encoding="utf-8") as f:
        # our HTML, as a template
        PAGES[name] = app.jinja_env.from_string("{% raw %}" + f.read() + "{% endraw %}")


@app.get("/page/<name>")
def page(name):
    return render_template(PAGES[name])


@app.get("/healthz")
def healthz():
    return "ok"
