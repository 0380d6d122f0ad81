#!/usr/bin/env python3
"""Validates the rendered Kubernetes manifests of every overlay (deploy/local/manifests.sh).

Usage: manifest_check.py K8S_DIR RENDERED_DIR [--self-test]

RENDERED_DIR holds <overlay>.yaml, each the output of `kubectl kustomize k8s/overlays/<overlay>`.
Every resource is validated against the Kubernetes JSON schemas (kubernetes-validate, strict: no
unknown fields), then the rendered YAML is read for the fleet's invariants:
- every pod (Deployments, StatefulSets, Jobs, CronJobs) runs as non-root, with a read-only root filesystem, no
  privilege escalation, all capabilities dropped, and CPU and memory requests and limits;
- every Deployment has liveness and readiness probes on its `admin` port (/livez, /readyz);
- every Secret file a pod reads is listed in k8s/SECRETS.md, and every row there is read;
- no Secret object is rendered and no plaintext secret value sits in an env var or ConfigMap;
- every service Deployment has an HPA and a PDB, and every service with a database a migration Job;
- the prod overlay runs as `production`, the dev overlay as `development`;
- the alerts (PrometheusRule) are deploy/observability/alerts.yml's groups, every expression
  parses as PromQL and every rule has a duration, a severity and a summary; the ServiceMonitor
  reaches every binary's admin port; the Ingress serves TLS only and caps bodies at the gateway's
  limit. (Custom resources have no Kubernetes schema; these checks stand in for it.)
--self-test breaks the prod render in known ways and fails unless each breakage is caught.
"""
import copy
import os
import re
import sys

import kubernetes_validate
import promql_parser
import yaml

K8S_VERSION = "1.33.0"
SERVICES = ["gateway", "auth", "subscriptions", "content", "video", "messaging", "ads", "commerce", "analytics"]
# Env names that hold secrets when given a literal value instead of a _FILE path.
SECRETISH = re.compile(r"(SECRET|PASSWORD|TOKEN|API_KEY|SEALING_KEYS|PRIVATE_KEY|CREDENTIAL)S?$")


def documented_secrets(k8s_dir):
    """(secret, key) pairs from SECRETS.md; `<service>` and `<binary>` rows expand to every name."""
    pairs = set()
    for line in open(f"{k8s_dir}/SECRETS.md"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4 or not cells[0].startswith("nexus-"):
            continue
        secret, key = cells[0], cells[1]
        secrets = [secret.replace("<service>", s) for s in SERVICES if s != "gateway"] if "<service>" in secret else [secret]
        keys = [key.replace("<binary>", s) for s in SERVICES] if "<binary>" in key else [key]
        if secret == "nexus-<service>" and key == "service-secret":
            secrets.append("nexus-gateway")
        for s in secrets:
            for k in keys:
                pairs.add((s, k))
    return pairs


def pod_specs(doc):
    kind = doc.get("kind")
    if kind in ("Deployment", "Job", "StatefulSet"):
        return [doc["spec"]["template"]["spec"]]
    if kind == "CronJob":
        return [doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]]
    return []


def name(doc):
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


CUSTOM_GROUPS = ("monitoring.coreos.com/",)


def alert_errors(overlay, groups, source_groups):
    errors = []
    if groups != source_groups:
        errors.append(f"{overlay}: the PrometheusRule's groups differ from deploy/observability/alerts.yml")
    for g in groups or []:
        for r in g.get("rules", []):
            who = f"{overlay}: alert {r.get('alert')}"
            try:
                promql_parser.parse(str(r.get("expr", "")))
            except Exception as e:  # the parser raises ValueError with the reason
                errors.append(f"{who}: expression does not parse: {e}")
            if not r.get("alert") or not r.get("for"):
                errors.append(f"{who}: needs a name and a duration (for)")
            if (r.get("labels") or {}).get("severity") not in ("critical", "warning"):
                errors.append(f"{who}: severity must be critical or warning")
            if not (r.get("annotations") or {}).get("summary"):
                errors.append(f"{who}: no summary")
    return errors


def expected_callers(root):
    """service -> binaries that call its gRPC port: each binary's [services] table, and every
    binary but auth calls auth (JWKS, service tokens)."""
    calls = {s: set() for s in SERVICES}
    for caller in SERVICES:
        section = None
        for line in open(f"{root}/services/{caller}/config.default.toml"):
            line = line.split("#", 1)[0].strip()
            if line.startswith("["):
                section = line.strip("[]").strip()
            elif section == "services" and "=" in line:
                key = line.split("=", 1)[0].strip()
                if key in calls:
                    calls[key].add(caller)
        if caller != "auth":
            calls["auth"].add(caller)
    calls.pop("gateway")
    return calls


def allowed_callers(docs, svc):
    """Binaries whose pods the NetworkPolicies let reach nexus-<svc>'s gRPC port."""
    allowed = set()
    for doc in docs:
        if doc.get("kind") != "NetworkPolicy":
            continue
        selected = (doc["spec"].get("podSelector") or {}).get("matchLabels") or {}
        if selected and selected.get("app.kubernetes.io/name") not in (None, f"nexus-{svc}"):
            continue
        if selected and selected.get("app.kubernetes.io/component") not in (None, "server"):
            continue
        for rule in doc["spec"].get("ingress") or []:
            if not any(p.get("port") == "grpc" for p in rule.get("ports") or []):
                continue
            for peer in rule.get("from") or [{"podSelector": {}}]:
                labels = (peer.get("podSelector") or {}).get("matchLabels") or {}
                name = labels.get("app.kubernetes.io/name", "")
                allowed.add(name.removeprefix("nexus-") if name else "*anyone in the namespace*")
    return allowed


def gateway_body_limit(root):
    for line in open(f"{root}/services/gateway/config.default.toml"):
        m = re.match(r"\s*body_limit\s*=\s*(\d+)", line)
        if m:
            return int(m.group(1))
    raise SystemExit("gateway body_limit not found")


def size_bytes(text):
    m = re.fullmatch(r"(\d+)([kmg]?)", str(text).lower())
    if not m:
        return None
    return int(m.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2)]


def check(overlay, docs, documented, root=".", alerts=None):
    errors = []
    for doc in docs:
        if str(doc.get("apiVersion", "")).startswith(CUSTOM_GROUPS):
            continue
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except Exception as e:  # the library raises its own types per failure kind
            errors.append(f"{overlay}: {name(doc)} does not validate against Kubernetes {K8S_VERSION}: {str(e).splitlines()[0]}")

    read = set()
    for doc in docs:
        if doc.get("kind") == "Secret":
            errors.append(f"{overlay}: {name(doc)} is rendered: secrets are never committed (k8s/SECRETS.md)")
        if doc.get("kind") == "ConfigMap":
            for k, v in (doc.get("data") or {}).items():
                if SECRETISH.search(k) and not k.endswith("_FILE") and str(v).strip():
                    errors.append(f"{overlay}: {name(doc)} holds {k} in plaintext")
        for spec in pod_specs(doc):
            who = name(doc)
            psc = spec.get("securityContext") or {}
            volumes = {v["name"]: v["secret"]["secretName"] for v in spec.get("volumes", []) if "secret" in v}
            for c in spec.get("containers", []) + spec.get("initContainers", []):
                csc = c.get("securityContext") or {}
                if not (csc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True):
                    errors.append(f"{overlay}: {who} container {c['name']} may run as root")
                if csc.get("readOnlyRootFilesystem") is not True:
                    errors.append(f"{overlay}: {who} container {c['name']} has a writable root filesystem")
                if csc.get("allowPrivilegeEscalation") is not False:
                    errors.append(f"{overlay}: {who} container {c['name']} allows privilege escalation")
                if "ALL" not in ((csc.get("capabilities") or {}).get("drop") or []):
                    errors.append(f"{overlay}: {who} container {c['name']} keeps Linux capabilities")
                res = c.get("resources") or {}
                for part in ("requests", "limits"):
                    for r in ("cpu", "memory"):
                        if r not in (res.get(part) or {}):
                            errors.append(f"{overlay}: {who} container {c['name']} sets no {r} {part[:-1]}")
                mounts = {m["mountPath"]: volumes[m["name"]] for m in c.get("volumeMounts", []) if m["name"] in volumes}
                texts = [e.get("value", "") for e in c.get("env", [])] + list(c.get("args", [])) + list(c.get("command", []))
                for t in texts:
                    for path, secret in mounts.items():
                        for key in re.findall(re.escape(path) + r"/([A-Za-z0-9._-]+)", str(t)):
                            read.add((secret, key))
                            if (secret, key) not in documented:
                                errors.append(f"{overlay}: {who} reads {secret}/{key}, which k8s/SECRETS.md does not list")
                for e in c.get("env", []):
                    ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                    if ref:
                        read.add((ref["name"], ref["key"]))
                        if (ref["name"], ref["key"]) not in documented:
                            errors.append(f"{overlay}: {who} reads {ref['name']}/{ref['key']}, which k8s/SECRETS.md does not list")
                    if "value" in e and SECRETISH.search(e["name"]) and not e["name"].endswith("_FILE") and str(e["value"]).strip():
                        errors.append(f"{overlay}: {who} sets {e['name']} in plaintext")
                if doc["kind"] == "Deployment" and c["name"] == "app":
                    ports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
                    for probe, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz")):
                        get = (c.get(probe) or {}).get("httpGet") or {}
                        if get.get("path") != path or get.get("port") not in ("admin", ports.get("admin")) or "admin" not in ports:
                            errors.append(f"{overlay}: {who} has no {probe} on {path} at its admin port")
    for pair in sorted(documented - read):
        errors.append(f"{overlay}: k8s/SECRETS.md lists {pair[0]}/{pair[1]}, which no manifest reads")

    by_kind = {}
    for doc in docs:
        by_kind.setdefault(doc.get("kind"), {})[doc["metadata"]["name"]] = doc
    deployments = by_kind.get("Deployment", {})
    for svc in SERVICES:
        dep = f"nexus-{svc}"
        if dep not in deployments:
            errors.append(f"{overlay}: no Deployment {dep}")
            continue
        labels = deployments[dep]["spec"]["selector"]["matchLabels"]
        if not any(h["spec"]["scaleTargetRef"].get("name") == dep for h in by_kind.get("HorizontalPodAutoscaler", {}).values()):
            errors.append(f"{overlay}: {dep} has no HorizontalPodAutoscaler")
        if not any(
            all((p["spec"].get("selector") or {}).get("matchLabels", {}).get(k) == v for k, v in labels.items())
            for p in by_kind.get("PodDisruptionBudget", {}).values()
        ):
            errors.append(f"{overlay}: {dep} has no PodDisruptionBudget")
        if svc != "gateway" and f"{dep}-migrate" not in by_kind.get("Job", {}):
            errors.append(f"{overlay}: {dep} has no migration Job")
        if svc != "gateway":
            pod = deployments[dep]["spec"]["template"]["spec"]
            app_image = next(c["image"] for c in pod["containers"] if c["name"] == "app")
            waits = [
                c for c in pod.get("initContainers", []) if c.get("args", [])[:1] == ["await-migrations"] and c.get("image") == app_image
            ]
            if not waits:
                errors.append(f"{overlay}: {dep} does not wait for its migrations (init container await-migrations)")

    # The NATS server: JetStream on its persistent volume, clients limited to the service users.
    nats = by_kind.get("StatefulSet", {}).get("nats")
    if nats is None:
        errors.append(f"{overlay}: no NATS StatefulSet")
    else:
        claims = [c["metadata"]["name"] for c in nats["spec"].get("volumeClaimTemplates", [])]
        mounts = {m["name"]: m["mountPath"] for c in nats["spec"]["template"]["spec"]["containers"] for m in c.get("volumeMounts", [])}
        conf = next((cm["data"].get("nats.conf", "") for n, cm in by_kind.get("ConfigMap", {}).items() if n.startswith("nats-config")), "")
        store = re.search(r"store_dir:\s*(\S+)", conf)
        if not store or not any(mounts.get(c) == store.group(1) for c in claims):
            errors.append(f"{overlay}: NATS keeps JetStream off its persistent volume")
        if "include ./nexus-authorization.conf" not in conf:
            errors.append(f"{overlay}: NATS runs without the per-service users")

    callers = expected_callers(root)
    for svc, expected in callers.items():
        allowed = allowed_callers(docs, svc)
        if allowed != expected:
            errors.append(
                f"{overlay}: NetworkPolicies let {sorted(allowed)} reach nexus-{svc}'s gRPC; its callers are {sorted(expected)}"
            )

    rules = list(by_kind.get("PrometheusRule", {}).values())
    if len(rules) != 1:
        errors.append(f"{overlay}: expected one PrometheusRule, found {len(rules)}")
    else:
        errors += alert_errors(overlay, rules[0]["spec"].get("groups"), alerts)
    monitors = list(by_kind.get("ServiceMonitor", {}).values())
    services = by_kind.get("Service", {})
    for svc in SERVICES:
        target = services.get(f"nexus-{svc}")
        reached = target is not None and any(
            f"nexus-{svc}" in sum((e.get("values", []) for e in m["spec"]["selector"].get("matchExpressions", [])), [])
            and any(ep.get("port") in [p.get("name") for p in target["spec"]["ports"]] for ep in m["spec"]["endpoints"])
            and any(ep.get("port") == "admin" for ep in m["spec"]["endpoints"])
            for m in monitors
        )
        if not reached:
            errors.append(f"{overlay}: no ServiceMonitor scrapes nexus-{svc}'s admin port")
    ingresses = list(by_kind.get("Ingress", {}).values())
    if not ingresses:
        errors.append(f"{overlay}: no Ingress for the gateway")
    limit = gateway_body_limit(root)
    for ing in ingresses:
        ann = ing["metadata"].get("annotations") or {}
        who = f"{overlay}: {name(ing)}"
        if not ing["spec"].get("tls"):
            errors.append(f"{who} serves no TLS")
        if ann.get("nginx.ingress.kubernetes.io/force-ssl-redirect") != "true":
            errors.append(f"{who} does not redirect HTTP to HTTPS")
        if "cert-manager.io/cluster-issuer" not in ann and "cert-manager.io/issuer" not in ann:
            errors.append(f"{who} names no cert-manager issuer")
        size = size_bytes(ann.get("nginx.ingress.kubernetes.io/proxy-body-size", ""))
        paths = [p["path"] for r in ing["spec"].get("rules", []) for p in r.get("http", {}).get("paths", [])]
        if size is None:
            errors.append(f"{who} sets no request size limit")
        elif "/" in paths and size != limit:
            errors.append(f"{who} caps bodies at {size} bytes, the gateway at {limit}")

    want = {"prod": "production", "dev": "development"}.get(overlay)
    if want:
        envs = [
            (cm.get("data") or {}).get("NEXUS_ENVIRONMENT")
            for n, cm in by_kind.get("ConfigMap", {}).items()
            if n.startswith("nexus-config")
        ]
        if envs != [want]:
            errors.append(f"{overlay}: NEXUS_ENVIRONMENT is {envs}, not {want}")
    return errors


def breakages(docs):
    """(what, broken copy) pairs, each of which the checks must catch."""

    def first(kind, pred=lambda d: True):
        return next(d for d in docs if d.get("kind") == kind and pred(d))

    def broken(what, expected, change):
        copy_ = copy.deepcopy(docs)
        change(copy_)
        return what, expected, copy_

    def dep(ds, svc="ads"):
        return next(d for d in ds if d.get("kind") == "Deployment" and d["metadata"]["name"] == f"nexus-{svc}")

    def rule(ds):
        return next(d for d in ds if d.get("kind") == "PrometheusRule")

    def app(ds, svc="ads"):
        return dep(ds, svc)["spec"]["template"]["spec"]

    first("Deployment")  # the render has Deployments at all
    return [
        broken("replicas as text (schema)", "does not validate", lambda ds: dep(ds)["spec"].__setitem__("replicas", "three")),
        broken("a pod that may run as root", "may run as root", lambda ds: app(ds)["securityContext"].pop("runAsNonRoot")),
        broken("a writable root filesystem", "writable root filesystem", lambda ds: app(ds)["containers"][0]["securityContext"].__setitem__("readOnlyRootFilesystem", False)),
        broken("no memory limit", "no memory limit", lambda ds: app(ds)["containers"][0]["resources"]["limits"].pop("memory")),
        broken("no readiness probe", "no readinessProbe", lambda ds: app(ds)["containers"][0].pop("readinessProbe")),
        broken(
            "an undocumented secret file",
            "does not list",
            lambda ds: app(ds)["containers"][0]["env"].append({"name": "NEXUS_X__KEY_FILE", "value": "/run/secrets/nexus/undocumented"}),
        ),
        broken(
            "a plaintext secret",
            "in plaintext",
            lambda ds: app(ds)["containers"][0]["env"].append({"name": "NEXUS_META__APP_SECRET", "value": "s3cr3t"}),
        ),
        broken(
            "a Secret object",
            "is rendered",
            lambda ds: ds.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "nexus-ads", "namespace": "nexus"}, "stringData": {"x": "y"}}),
        ),
        broken(
            "a service without its PDB",
            "no PodDisruptionBudget",
            lambda ds: ds.remove(next(d for d in ds if d.get("kind") == "PodDisruptionBudget" and d["metadata"]["name"] == "nexus-video")),
        ),
        broken(
            "a service without its migration Job",
            "no migration Job",
            lambda ds: ds.remove(next(d for d in ds if d.get("kind") == "Job" and d["metadata"]["name"] == "nexus-commerce-migrate")),
        ),
        broken(
            "an alert that does not parse",
            "does not parse",
            lambda ds: rule(ds)["spec"]["groups"][0]["rules"][0].__setitem__("expr", "sum by (job (up)"),
        ),
        broken(
            "an alert without a severity",
            "severity must be",
            lambda ds: rule(ds)["spec"]["groups"][0]["rules"][0]["labels"].pop("severity"),
        ),
        broken(
            "an Ingress without TLS",
            "serves no TLS",
            lambda ds: next(d for d in ds if d.get("kind") == "Ingress")["spec"].pop("tls"),
        ),
        broken(
            "an Ingress allowing larger bodies than the gateway",
            "caps bodies at",
            lambda ds: next(d for d in ds if d.get("kind") == "Ingress" and d["metadata"]["name"] == "nexus-gateway")["metadata"][
                "annotations"
            ].__setitem__("nginx.ingress.kubernetes.io/proxy-body-size", "100m"),
        ),
        broken(
            "gRPC open to a binary that does not call the service",
            "NetworkPolicies let",
            lambda ds: next(d for d in ds if d.get("kind") == "NetworkPolicy" and d["metadata"]["name"] == "grpc-to-video")["spec"][
                "ingress"
            ][0]["from"].append({"podSelector": {"matchLabels": {"app.kubernetes.io/name": "nexus-commerce"}}}),
        ),
        broken(
            "a Deployment that does not wait for its migrations",
            "does not wait for its migrations",
            lambda ds: app(ds, "messaging").pop("initContainers"),
        ),
        broken(
            "NATS without its persistent volume",
            "JetStream off its persistent volume",
            lambda ds: next(d for d in ds if d.get("kind") == "StatefulSet" and d["metadata"]["name"] == "nats")["spec"].pop("volumeClaimTemplates"),
        ),
        broken(
            "a NATS pod that may run as root",
            "may run as root",
            lambda ds: next(d for d in ds if d.get("kind") == "StatefulSet" and d["metadata"]["name"] == "nats")["spec"]["template"]["spec"][
                "securityContext"
            ].pop("runAsNonRoot"),
        ),
        broken(
            "prod running as development",
            "not production",
            lambda ds: next(d for d in ds if d.get("kind") == "ConfigMap" and d["metadata"]["name"].startswith("nexus-config"))["data"].__setitem__(
                "NEXUS_ENVIRONMENT", "development"
            ),
        ),
    ]


def main():
    k8s_dir, rendered = sys.argv[1], sys.argv[2]
    self_test = "--self-test" in sys.argv[3:]
    documented = documented_secrets(k8s_dir)
    root = os.path.dirname(os.path.abspath(k8s_dir))
    alerts = yaml.safe_load(open(f"{root}/deploy/observability/alerts.yml"))["groups"]
    failed = False
    overlays = sorted(f[: -len(".yaml")] for f in os.listdir(rendered) if f.endswith(".yaml"))
    renders = {}
    for overlay in overlays:
        docs = [d for d in yaml.safe_load_all(open(f"{rendered}/{overlay}.yaml")) if d]
        renders[overlay] = docs
        errors = check(overlay, docs, documented, root, alerts)
        kinds = {}
        for d in docs:
            kinds[d["kind"]] = kinds.get(d["kind"], 0) + 1
        print(f"manifests {overlay}: {len(docs)} resources ({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))})")
        for e in errors:
            print(f"  FAIL {e}")
        failed |= bool(errors)
    if self_test:
        if "prod" not in renders:
            print("self-test: no prod render")
            sys.exit(1)
        for what, expected, docs in breakages(renders["prod"]):
            hits = [e for e in check("prod", docs, documented, root, alerts) if expected in e]
            print(f"self-test: {what}: {'caught' if hits else 'NOT CAUGHT'}" + (f" ({hits[0]})" if hits else ""))
            failed |= not hits
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
