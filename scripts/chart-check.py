"""Reads an installed CityEvents release back from the API server and checks
the chart's promises: hardened, probed and limited containers, headless
backends, default-deny network policies, HPA and PDB where enabled, token
automount only for discovery, nothing secret in a ConfigMap.

    python3 chart-check.py NAMESPACE RELEASE [--autoscaling]

Uses kubectl (KUBECONFIG). Prints one line per promise; exits 1 on the
first broken one with what broke it.
"""
import base64
import json
import subprocess
import sys

SERVICES = ["auth", "event", "join", "feed", "media", "mail", "bff"]


def get(kind, ns, selector):
    out = subprocess.run(
        ["kubectl", "get", kind, "-n", ns, "-l", selector, "-o", "json"],
        check=True, capture_output=True, text=True).stdout
    return json.loads(out)["items"]


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def ok(msg):
    print(f"ok: {msg}")


def main():
    ns, release = sys.argv[1], sys.argv[2]
    autoscaling = "--autoscaling" in sys.argv
    sel = f"app.kubernetes.io/instance={release}"
    deployments = get("deployments", ns, sel)
    by_component = {d["metadata"]["labels"]["app.kubernetes.io/component"]: d for d in deployments}
    missing = [s for s in SERVICES if s not in by_component]
    if missing:
        fail(f"no Deployment for {missing}")

    for d in deployments:
        name = d["metadata"]["name"]
        spec = d["spec"]["template"]["spec"]
        pod_sc = spec.get("securityContext", {})
        service = d["metadata"]["labels"]["app.kubernetes.io/component"] in SERVICES
        for c in spec["containers"]:
            sc = c.get("securityContext", {})
            where = f"{name}/{c['name']}"
            if not (sc.get("runAsNonRoot") or pod_sc.get("runAsNonRoot")):
                fail(f"{where} may run as root")
            if sc.get("runAsUser", pod_sc.get("runAsUser", 0)) == 0:
                fail(f"{where} runs as uid 0")
            if sc.get("allowPrivilegeEscalation") is not False:
                fail(f"{where} allows privilege escalation")
            if sc.get("readOnlyRootFilesystem") is not True:
                fail(f"{where} has a writable root filesystem")
            if sc.get("capabilities", {}).get("drop") != ["ALL"]:
                fail(f"{where} keeps capabilities")
            if sc.get("seccompProfile", pod_sc.get("seccompProfile", {})).get("type") != "RuntimeDefault":
                fail(f"{where} has no RuntimeDefault seccomp profile")
            if not c.get("resources", {}).get("limits", {}).get("memory"):
                fail(f"{where} has no memory limit")
            if not (c.get("readinessProbe") and c.get("livenessProbe")):
                fail(f"{where} lacks a readiness or liveness probe")
            if service:
                live, ready = c["livenessProbe"].get("grpc"), c["readinessProbe"].get("grpc")
                if not (live and ready and c.get("startupProbe", {}).get("grpc")):
                    fail(f"{where}: probes are not native gRPC")
                if live.get("service") == ready.get("service"):
                    fail(f"{where}: liveness and readiness ask the same health service")
                if not isinstance(live["port"], int):
                    fail(f"{where}: the gRPC probe port is not numeric")
                sleep = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds")
                env = {e["name"]: e.get("value") for e in c.get("env", [])}
                if sleep is None:
                    fail(f"{where} has no preStop wait")
                grace = spec.get("terminationGracePeriodSeconds", 30)
                if grace <= sleep:
                    fail(f"{where}: terminationGracePeriodSeconds {grace} is not longer than the drain")
                if env and any("PASSWORD" in k and v for k, v in env.items()):
                    fail(f"{where} has a password in plain env")
        want_token = by_component.get("bff") is d
        if bool(spec.get("automountServiceAccountToken")) != want_token:
            fail(f"{name}: service account token mounted={spec.get('automountServiceAccountToken')}")
        if service and spec.get("serviceAccountName", "default") == "default":
            fail(f"{name} runs under the default ServiceAccount")
    ok(f"{len(deployments)} Deployments: every container non-root, read-only, no privilege escalation, "
       "capabilities dropped, seccomp RuntimeDefault, memory limits, readiness and liveness probes")
    ok("services: native gRPC startup/liveness/readiness probes on a numeric port with separate health names, "
       "preStop wait shorter than the termination grace; only the BFF mounts a token")

    services = get("services", ns, sel)
    for s in services:
        comp = s["metadata"]["labels"]["app.kubernetes.io/component"]
        if comp == "bff":
            if s["spec"].get("type") != "ClusterIP" or s["spec"].get("clusterIP") == "None":
                fail("the BFF's Service is not a ClusterIP Service")
        elif comp in SERVICES and s["spec"].get("clusterIP") != "None":
            fail(f"the {comp} Service is not headless")
    ok("the BFF's Service is ClusterIP; every backend Service is headless")

    roles = get("roles", ns, sel)
    for r in roles:
        for rule in r["rules"]:
            if rule.get("resources") != ["endpointslices"] or set(rule["verbs"]) - {"get", "list", "watch"}:
                fail(f"Role {r['metadata']['name']} grants more than reading EndpointSlices: {rule}")
    if not roles:
        fail("no Role lets the BFF read EndpointSlices")
    ok(f"{len(roles)} Role(s), each only reading EndpointSlices")

    policies = get("networkpolicies", ns, sel)
    deny = [p for p in policies if p["metadata"]["name"].endswith("-default-deny")]
    if not deny or sorted(deny[0]["spec"]["policyTypes"]) != ["Egress", "Ingress"] \
            or deny[0]["spec"].get("ingress") or deny[0]["spec"].get("egress"):
        fail("no default-deny NetworkPolicy for ingress and egress")
    ok(f"default-deny NetworkPolicy, then {len(policies) - 1} named allows")

    hpas = get("horizontalpodautoscalers", ns, sel)
    pdbs = get("poddisruptionbudgets", ns, sel)
    if autoscaling and len(hpas) != len(SERVICES):
        fail(f"{len(hpas)} HPAs for {len(SERVICES)} services")
    if not autoscaling and hpas:
        fail("HPAs present while autoscaling is off")
    multi = [c for c, d in by_component.items() if c in SERVICES and (autoscaling or d["spec"].get("replicas", 1) > 1)]
    if len(pdbs) != len(multi):
        fail(f"{len(pdbs)} PodDisruptionBudgets for {len(multi)} services with several pods")
    for p in pdbs:
        if p["spec"].get("maxUnavailable") != 1:
            fail(f"PDB {p['metadata']['name']} is not maxUnavailable: 1")
    ok(f"{len(hpas)} HPAs, {len(pdbs)} PodDisruptionBudgets (maxUnavailable 1) where there are several pods")

    secrets = get("secrets", ns, sel)
    values = set()
    for s in secrets:
        for v in (s.get("data") or {}).values():
            text = base64.b64decode(v).decode(errors="replace")
            values.update(part for part in [text, *text.splitlines()] if len(part) >= 8)
    configmaps = get("configmaps", ns, sel)
    for cm in configmaps:
        for key, text in (cm.get("data") or {}).items():
            leaked = [v for v in values if v in text]
            if leaked or "PRIVATE KEY" in text:
                fail(f"ConfigMap {cm['metadata']['name']} key {key} holds a secret value")
    if not values:
        fail("no Secret found to compare the ConfigMaps with")
    ok(f"no value of the release's Secrets appears in any of its {len(configmaps)} ConfigMaps")


if __name__ == "__main__":
    main()
