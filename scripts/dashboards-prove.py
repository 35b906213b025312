#!/usr/bin/env python3
"""Proves the dashboards against a real Prometheus, and draws them.

    dashboards-prove.py PROMETHEUS_URL DASHBOARDS_DIR OUT_DIR START_UNIX

First, no label of any series may carry a user, event, email or cursor
value: label values that look like a UUID, an email address or a token,
or a label with more than 100 values, fail the run.

Then every panel query of every dashboard in DASHBOARDS_DIR is evaluated through
Prometheus's HTTP API with the variables set as Grafana would set them for
"all" (namespace and service `.*`, `$__rate_interval` 1m): a query that
errors or returns no series fails the run. Each dashboard is then drawn
from range queries over the run (matplotlib) into OUT_DIR/<name>.png, so a
reader sees what an SRE would.
"""
import json
import pathlib
import re
import sys
import time
import urllib.parse
import urllib.request

VARIABLES = {
    "${datasource}": "",
    "$namespace": ".*",
    "$service": ".*",
    "$__rate_interval": "1m",
    "$__range": "10m",
}


def expr_of(target):
    expr = target["expr"]
    for k, v in VARIABLES.items():
        expr = expr.replace(k, v)
    return expr


def api(base, path, **params):
    url = f"{base}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=30) as res:
            return json.load(res)
    except urllib.error.HTTPError as e:
        return json.load(e)


UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
# Where values are addresses or build facts by design.
FREE = {"instance", "__name__", "le", "quantile", "version"}


def labels_are_bounded(base):
    """Label values that identify people, events or pages, or grow without bound."""
    failures = []
    for name in api(base, "labels")["data"]:
        if name in FREE:
            continue
        values = api(base, f"label/{urllib.parse.quote(name)}/values")["data"]
        if len(values) > 100:
            failures.append(f"label {name} has {len(values)} values (unbounded?)")
        for v in values:
            if UUID.search(v) or "@" in v or len(v) > 64:
                failures.append(f"label {name} carries {v!r}")
                break
    return failures


def panels(dashboard):
    for p in dashboard["panels"]:
        if p.get("type") != "row" and p.get("targets"):
            yield p


def prove(base, dashboards):
    failures, count = [], 0
    for path, d in dashboards:
        for p in panels(d):
            for t in p["targets"]:
                count += 1
                expr = expr_of(t)
                got = api(base, "query", query=expr)
                if got.get("status") != "success":
                    failures.append(f"{path.name} / {p['title']}: {got.get('error')}: {expr}")
                elif not got["data"]["result"]:
                    failures.append(f"{path.name} / {p['title']}: no series: {expr}")
    return failures, count


def draw(base, dashboards, out, start, end):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    step = max(1, int((end - start) / 200))
    for path, d in dashboards:
        ps = list(panels(d))
        cols = 3
        rows = (len(ps) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 3.2 * rows), squeeze=False)
        fig.suptitle(d["title"], fontsize=14)
        for ax, p in zip(axes.flat, ps):
            ax.set_title(p["title"], fontsize=10)
            for t in p["targets"]:
                got = api(base, "query_range", query=expr_of(t), start=start, end=end, step=step)
                for series in got.get("data", {}).get("result", [])[:8]:
                    xs = [float(v[0]) - start for v in series["values"]]
                    ys = [float(v[1]) for v in series["values"]]
                    legend = t.get("legendFormat", "")
                    for k, v in series["metric"].items():
                        legend = legend.replace("{{%s}}" % k, v)
                    ax.plot(xs, ys, label=legend[:40], linewidth=1)
            ax.set_xlabel("seconds into the run", fontsize=8)
            ax.tick_params(labelsize=7)
            unit = p.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
            if unit:
                ax.set_ylabel(unit, fontsize=8)
            if ax.lines:
                ax.legend(fontsize=6, loc="upper left")
        for ax in list(axes.flat)[len(ps):]:
            ax.axis("off")
        fig.tight_layout()
        fig.savefig(out / f"{path.stem}.png", dpi=80)
        plt.close(fig)


def main():
    base, folder, out = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
    start = float(sys.argv[4])
    dashboards = [(p, json.loads(p.read_text())) for p in sorted(folder.glob("*.json"))]
    # A rate needs two scrapes inside its window: wait a few.
    time.sleep(3)
    failures = labels_are_bounded(base)
    proved, count = prove(base, dashboards)
    failures += proved
    end = time.time()
    draw(base, dashboards, out, start, end)
    print(f"labels bounded; {count} panel queries in {len(dashboards)} dashboards evaluated; drawn into {out}")
    if failures:
        print("queries that failed or returned nothing:")
        for f in failures:
            print("  " + f)
        sys.exit(1)


main()
