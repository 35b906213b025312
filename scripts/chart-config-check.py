"""Every service accepts the settings a chart render gives it: for each
service Deployment in the rendered manifests, the environment its container
gets (its ConfigMap, plus values from the rendered Secret) is handed to the
real binary's `config` command, which loads it as `serve` would (unknown
keys and wrong types are errors) without connecting to anything.

    python3 chart-config-check.py RENDERED.yaml BIN_DIR
"""
import base64
import subprocess
import sys

import yaml

SERVICES = {"auth", "event", "join", "feed", "media", "mail", "bff"}


def main():
    docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
    bins = sys.argv[2]
    configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    secrets = {d["metadata"]["name"]: {k: base64.b64decode(v).decode() for k, v in d.get("data", {}).items()}
               for d in docs if d["kind"] == "Secret"}
    checked = 0
    for d in docs:
        if d["kind"] != "Deployment":
            continue
        service = d["metadata"]["labels"]["app.kubernetes.io/component"]
        if service not in SERVICES:
            continue
        c = d["spec"]["template"]["spec"]["containers"][0]
        env = {"PATH": "/usr/bin:/bin"}
        for source in c.get("envFrom", []):
            env.update(configmaps[source["configMapRef"]["name"]])
        for e in c.get("env", []):
            if "value" in e:
                env[e["name"]] = e["value"]
                continue
            ref = e["valueFrom"]["secretKeyRef"]
            value = secrets.get(ref["name"], {}).get(ref["key"])
            if value is None and not ref.get("optional"):
                sys.exit(f"{service}: {e['name']} names {ref['name']}/{ref['key']}, which the render does not hold")
            if value is not None:
                env[e["name"]] = value
        binary = c["command"][0].rsplit("/", 1)[-1]
        run = subprocess.run([f"{bins}/{binary}", "config"], env=env, capture_output=True, text=True)
        if run.returncode != 0:
            sys.exit(f"{service} refuses the chart's settings: {run.stderr.strip()}")
        checked += 1
        print(f"{service}: accepts its {len([k for k in env if k.startswith('CITYEVENTS_')])} settings")
    if checked != len(SERVICES):
        sys.exit(f"checked {checked} services, expected {len(SERVICES)}")


if __name__ == "__main__":
    main()
