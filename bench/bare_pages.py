"""A bare Flask app for bench/pages.py: each page renders the HTML our page gave (read
from the files the bench names), through Jinja, with nothing else — no database, no
session, no headers of ours: the least a Flask page costs."""

import os

from flask import Flask, render_template_string

app = Flask(__name__)
PAGES = {}
for name, path in (item.split("=", 1) for item in os.environ["BENCH_PAGES"].split(",")):
    with open(path, encoding="utf-8") as f:
        PAGES[name] = "{% raw %}" + f.read() + "{% endraw %}"  # our HTML, as a template


@app.get("/page/<name>")
def page(name):
    return render_template_string(PAGES[name])


@app.get("/healthz")
def healthz():
    return "ok"
