#!/usr/bin/python3
"""Structural checks of the monitoring files in deploy/ (run by Tests/Fixtures/system/check-deploy.sh):

  check-deploy.py alerts ALERTS.yml TESTS.yml
      every alert has `for`, a severity label, summary and description annotations, and the unit
      tests have a case where it fires and one where it must not; metric names are known.
  check-deploy.py dashboard DASHBOARD.json SCHEMA_DIR RULES_OUT.yml
      validates the dashboard against Grafana's dashboard JSON Schema (vendored in SCHEMA_DIR, whose
      git blob ids are checked), each panel's options/custom field config against its panel
      plugin's schema and each target against the Prometheus query schema, then the layout, ids,
      data sources and template variables; writes every PromQL expression (variables substituted)
      as a recording rule to RULES_OUT.yml for `promtool check rules`.
  check-deploy.py otel CONFIG.yaml
      the collector configuration parses, every component a pipeline names is defined (and every
      defined one is used), and the receiver/exporter settings the README promises are there.

Prints one line per check passed; exits 1 with the reasons on the first failing check.
Needs PyYAML and jsonschema (Debian: python3-yaml, python3-jsonschema)."""
import hashlib
import json
import os
import re
import sys

import jsonschema
import yaml

# The agent's metrics contract (Sources/APTLayerAgent/Metrics.swift). A name outside it in an alert,
# a test series or a dashboard query is a typo (or the contract changed: update this list).
KNOWN_METRICS = {
    "apt_layer_agent_info", "apt_layer_update_state", "apt_layer_update_state_since_timestamp_seconds",
    "apt_layer_update_info", "apt_layer_update_wait_reason", "apt_layer_maintenance_window_open",
    "apt_layer_update_windows_missed", "apt_layer_policy_version", "apt_layer_policy_expiry_timestamp_seconds",
    "apt_layer_last_policy_fetch_timestamp_seconds", "apt_layer_policy_fetches_total",
    "apt_layer_reboot_slot_waits_total", "apt_layer_finalizations_total", "apt_layer_health_failures_total",
    "apt_layer_rollbacks_total", "apt_layer_deploy_failures_total", "apt_layer_boot_fallbacks_total", "apt_layer_telemetry_outbox_reports",
    "apt_layer_telemetry_outbox_oldest_age_seconds", "apt_layer_telemetry_reports_sent_total",
    "apt_layer_telemetry_reports_dropped_total", "apt_layer_telemetry_reports_dead_lettered_total",
    "apt_layer_countme_last_sent_timestamp_seconds", "apt_layer_transactions_total",
    "apt_layer_transaction_running", "apt_layer_transactions_queued", "apt_layer_api_errors_total",
    "apt_layer_deployments", "apt_layer_layered_packages", "apt_layer_agent_uptime_seconds",
    "apt_layer_connections_open", "apt_layer_connections_limit_reached_total", "apt_layer_connections_peer_refused_total",
    "apt_layer_journal_reset",
}
METRIC_RE = re.compile(r"\bapt_layer_[a-zA-Z0-9_]+")


# The string arguments of label_replace(v, DST, REPLACEMENT, SRC, REGEX): promtool parses these
# but Prometheus only checks them when the query runs.
LABEL_REPLACE_RE = re.compile(r'label_replace\(.*?,\s*"([^"]*)"\s*,\s*"([^"]*)"\s*,\s*"([^"]*)"\s*,\s*"([^"]*)"\s*\)', re.S)
LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def label_replace_problems(expr, where):
    problems = []
    if expr.count("label_replace(") != len(LABEL_REPLACE_RE.findall(expr)):
        problems.append(f"{where}: a label_replace() call whose arguments are not four string literals")
    for dst, _, src, regex in LABEL_REPLACE_RE.findall(expr):
        problems += [f"{where}: label_replace(): {n!r} is not a valid label name" for n in (dst, src) if not LABEL_NAME_RE.fullmatch(n)]
        try:
            re.compile(regex)
        except re.error as e:
            problems.append(f"{where}: label_replace(): bad regex {regex!r}: {e}")
    return problems


def fail(what, problems):
    print(f"FAIL: {what}", file=sys.stderr)
    for p in problems:
        print(f"  - {p}", file=sys.stderr)
    sys.exit(1)


def unknown_metrics(text, where):
    return [f"{where}: unknown metric {m!r} (not in the agent's metrics contract)"
            for m in sorted(set(METRIC_RE.findall(text)) - KNOWN_METRICS)]


# ------------------------------------------------------------------------------------------ alerts
def check_alerts(alerts_path, tests_path):
    problems = []
    alerts = {}
    for group in yaml.safe_load(open(alerts_path))["groups"]:
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            name = rule["alert"]
            if name in alerts:
                problems.append(f"{name}: defined twice")
            alerts[name] = rule
            if not re.fullmatch(r"(\d+[smhdwy])+", str(rule.get("for", ""))) or not re.search(r"[1-9]", str(rule["for"])):
                problems.append(f"{name}: no `for:` duration (or a zero one)")
            if rule.get("labels", {}).get("severity") not in ("info", "warning", "critical"):
                problems.append(f"{name}: severity label must be info, warning or critical")
            for key in ("summary", "description"):
                if not rule.get("annotations", {}).get(key, "").strip():
                    problems.append(f"{name}: no {key} annotation")
            problems += unknown_metrics(rule["expr"], name)
            problems += label_replace_problems(rule["expr"], name)
            for key, text in rule.get("annotations", {}).items():
                problems += unknown_metrics(text, f"{name} annotation {key}")
    if not alerts:
        problems.append(f"{alerts_path}: no alerts")
    firing, quiet = set(), set()
    tests = yaml.safe_load(open(tests_path))
    for test in tests["tests"]:
        for series in test.get("input_series", []):
            problems += unknown_metrics(series["series"], f"test {test.get('name')!r}")
        for case in test.get("alert_rule_test", []):
            name = case["alertname"]
            if name not in alerts:
                problems.append(f"test {test.get('name')!r}: alert {name!r} is not in {alerts_path}")
            (firing if case.get("exp_alerts") else quiet).add(name)
            for exp in case.get("exp_alerts") or []:
                if set(exp.get("exp_annotations", {})) != {"summary", "description"}:
                    problems.append(f"test {test.get('name')!r}: {name} must expect both summary and description")
    for name in alerts:
        if name not in firing:
            problems.append(f"{name}: no test case where it fires")
        if name not in quiet:
            problems.append(f"{name}: no test case where it must not fire (exp_alerts: [])")
    if problems:
        fail(f"{alerts_path} / {tests_path}", problems)
    print(f"ok: {len(alerts)} alerts each have for/severity/summary/description and a firing and a "
          f"non-firing test case; metric names match the contract")


# --------------------------------------------------------------------------------------- dashboard
BUILTIN_DURATIONS = {"__interval": "5m", "__rate_interval": "5m", "__range": "6h", "__auto": "5m"}
BUILTIN_NUMBERS = {"__interval_ms": "300000", "__range_ms": "21600000", "__range_s": "21600"}
VARIABLE_RE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)(?::[^\]]*)?\]\]")
LABEL_VALUES_RE = re.compile(r"^\s*label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$", re.S)
DS_REF = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}


def git_blob_id(path):
    data = open(path, "rb").read()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def load_schemas(schema_dir):
    """The vendored schemas, after checking them against the blob ids listed in the README."""
    listed = dict((name, blob) for blob, name in
                  re.findall(r"^([0-9a-f]{40})  (\S+\.jsonschema\.json)$", open(os.path.join(schema_dir, "README.md")).read(), re.M))
    problems = []
    if "dashboard.jsonschema.json" not in listed:
        problems.append(f"{schema_dir}/README.md lists no blob id for dashboard.jsonschema.json")
    schemas = {}
    for name, blob in listed.items():
        path = os.path.join(schema_dir, name)
        if not os.path.exists(path):
            problems.append(f"{path}: missing")
        elif git_blob_id(path) != blob:
            problems.append(f"{path}: not the vendored file (git blob {git_blob_id(path)}, README lists {blob})")
        else:
            schema = json.load(open(path))
            jsonschema.Draft7Validator.check_schema(schema)
            schemas[name.removesuffix(".jsonschema.json")] = schema
    if problems:
        fail("vendored Grafana schemas", problems)
    return schemas


def validator(schema, definition=None):
    if definition is not None:
        schema = dict(schema)
        schema["$ref"] = f"#/definitions/{definition}"
    return jsonschema.Draft7Validator(schema)


def errors(v, instance, where):
    out = []
    for e in sorted(v.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))):
        # For oneOf/anyOf (a panel is a Panel or a RowPanel): the errors of the alternative the
        # instance's `type` selects, else of the one that matched deepest into the instance.
        while e.context:
            alternatives = {}
            for c in e.context:
                alternatives.setdefault(c.relative_schema_path[0], []).append(c)
            typed = [a for a in alternatives.values() if not any(list(c.relative_path) == ["type"] for c in a)]
            e = max((c for a in (typed or alternatives.values()) for c in a), key=lambda c: len(c.absolute_path))
        message = e.message if len(e.message) <= 300 else e.message[:300] + "…"
        out.append(f"{where}/{'/'.join(map(str, e.absolute_path))}: {message}")
    return out


def substitute(expr, variables, where, problems):
    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name.isdigit():          # $1 in label_replace replacements
            return m.group(0)
        if name in BUILTIN_DURATIONS:
            return BUILTIN_DURATIONS[name]
        if name in BUILTIN_NUMBERS:
            return BUILTIN_NUMBERS[name]
        if name not in variables:
            problems.append(f"{where}: undefined template variable ${name}")
            return m.group(0)
        kind = variables[name]
        if kind == "interval":
            return "5m"
        if kind in ("query", "custom", "constant", "textbox"):
            return ".*"
        problems.append(f"{where}: variable ${name} of type {kind} cannot appear in PromQL")
        return m.group(0)
    return VARIABLE_RE.sub(repl, expr)


def check_dashboard(dash_path, schema_dir, rules_out):
    schemas = load_schemas(schema_dir)
    dash = json.load(open(dash_path))
    problems = errors(validator(schemas["dashboard"], "Dashboard"), dash, "(root)")
    if problems:
        fail(f"{dash_path} against Grafana's dashboard schema (grafana-foundation-sdk jsonschema/dashboard.jsonschema.json)", problems)
    print(f"ok: {dash_path} is valid against Grafana's dashboard JSON Schema")

    # Panels, with the panels of collapsed rows.
    panels = []
    for p in dash.get("panels", []):
        panels.append(p)
        panels += p.get("panels", []) if p.get("type") == "row" else []

    # Panel plugin and query schemas.
    query_v = validator(schemas["prometheus"], "Dataquery") if "prometheus" in schemas else None
    for p in panels:
        where = f"panel {p.get('id')} {p.get('title')!r}"
        if p["type"] == "row":
            continue
        if p["type"] not in schemas:
            problems.append(f"{where}: no vendored schema for panel type {p['type']!r}")
            continue
        defs = schemas[p["type"]].get("definitions", {})
        if "Options" in defs:
            problems += errors(validator(schemas[p["type"]], "Options"), p.get("options", {}), f"{where} options")
        custom = p.get("fieldConfig", {}).get("defaults", {}).get("custom")
        if custom is not None:
            if "FieldConfig" not in defs:
                problems.append(f"{where}: panel type {p['type']} has no custom field config")
            else:
                problems += errors(validator(schemas[p["type"]], "FieldConfig"), custom, f"{where} fieldConfig.defaults.custom")
        for t in p.get("targets", []):
            if query_v is None:
                problems.append(f"{where}: no vendored Prometheus query schema")
            else:
                problems += errors(query_v, t, f"{where} target {t.get('refId')}")
    if problems:
        fail(f"{dash_path} panel options and targets against the panel plugin and Prometheus query schemas", problems)
    print(f"ok: {dash_path}: options of {sum(p['type'] != 'row' for p in panels)} panels and every target "
          f"are valid against their plugin schemas ({', '.join(sorted(set(schemas) - {'dashboard'}))})")

    # Ids, layout, data sources.
    ids = [p.get("id") for p in panels]
    problems += [f"panel id {i} used {ids.count(i)} times" for i in sorted(set(ids), key=str) if ids.count(i) > 1]
    problems += [f"panel {p.get('title')!r} has no id" for p in panels if p.get("id") is None]
    if not dash.get("uid") or not dash.get("title"):
        problems.append("the dashboard needs a uid and a title")
    boxes = []
    for p in dash.get("panels", []):
        where = f"panel {p.get('id')} {p.get('title')!r}"
        g = p.get("gridPos")
        if g is None:
            problems.append(f"{where}: no gridPos")
            continue
        if g["x"] + g["w"] > 24:
            problems.append(f"{where}: gridPos x+w = {g['x'] + g['w']} exceeds the 24 columns")
        for other, og in boxes:
            if g["x"] < og["x"] + og["w"] and og["x"] < g["x"] + g["w"] and g["y"] < og["y"] + og["h"] and og["y"] < g["y"] + g["h"]:
                problems.append(f"{where} overlaps {other}")
        boxes.append((where, g))
        if p["type"] != "row":
            if not p.get("title"):
                problems.append(f"{where}: no title")
            if p.get("datasource") != DS_REF:
                problems.append(f"{where}: datasource must be {DS_REF}")
            if not p.get("targets"):
                problems.append(f"{where}: no targets")
            refs = [t.get("refId") for t in p.get("targets", [])]
            if len(set(refs)) != len(refs) or None in refs:
                problems.append(f"{where}: refIds must be present and unique, got {refs}")
            for t in p.get("targets", []):
                if t.get("datasource") != DS_REF:
                    problems.append(f"{where} target {t.get('refId')}: datasource must be {DS_REF}")
                if not t.get("expr", "").strip():
                    problems.append(f"{where} target {t.get('refId')}: empty expr")
        elif p.get("collapsed") is False and p.get("panels"):
            problems.append(f"{where}: an expanded row keeps its panels at the top level")

    # Template variables.
    variables = {v["name"]: v["type"] for v in dash["templating"].get("list", [])}
    ds = next((v for v in dash["templating"].get("list", []) if v["name"] == "DS_PROMETHEUS"), None)
    if ds is None or ds["type"] != "datasource" or ds.get("query") != "prometheus":
        problems.append("templating needs a datasource variable DS_PROMETHEUS with query 'prometheus'")
    for name in ("fleet", "release", "wave"):
        if variables.get(name) != "query":
            problems.append(f"templating needs a query variable {name!r}")
    if problems:
        fail(f"{dash_path} layout, ids, data sources and variables", problems)
    print(f"ok: {dash_path}: {len(panels)} unique panel ids, no overlapping or out-of-grid panels, "
          f"every panel and target on ${{DS_PROMETHEUS}}, variables {', '.join(variables)}")

    # PromQL: one recording rule per expression, for promtool.
    groups = []
    for v in dash["templating"].get("list", []):
        if v["type"] != "query":
            continue
        where = f"variable {v['name']}"
        if v.get("datasource") != DS_REF:
            problems.append(f"{where}: datasource must be {DS_REF}")
        q = v.get("query") if isinstance(v.get("query"), str) else (v.get("query") or {}).get("query", "")
        m = LABEL_VALUES_RE.match(q)
        if not m:
            problems.append(f"{where}: query must be label_values(SELECTOR, LABEL), got {q!r}")
            continue
        expr = substitute(m.group(1), variables, where, problems)
        problems += unknown_metrics(expr, where)
        groups.append({"name": f"{where} ({q})", "rules": [{"record": f"grafana:variable:{v['name']}", "expr": expr}]})
    for p in panels:
        for t in p.get("targets", []):
            where = f"panel {p.get('id')} {p.get('title')!r} target {t.get('refId')}"
            expr = substitute(t.get("expr", ""), variables, where, problems)
            problems += unknown_metrics(expr, where)
            problems += label_replace_problems(expr, where)
            groups.append({"name": where, "rules": [{"record": f"grafana:panel_{p.get('id')}:{t.get('refId')}", "expr": expr}]})
    if problems:
        fail(f"{dash_path} queries", problems)
    with open(rules_out, "w") as f:
        f.write(f"# Generated by Tests/Fixtures/system/check-deploy.py from {dash_path}: every query as a recording rule.\n")
        yaml.safe_dump({"groups": groups}, f, sort_keys=False, width=1000)
    print(f"ok: {dash_path}: {len(groups)} queries extracted (template variables substituted), metric names match the contract")


# ------------------------------------------------------------------------------------------- otel
SIGNALS = {"traces", "metrics", "logs", "profiles"}
# Component types of the contrib distribution this check accepts (a typo is not a component).
KNOWN_TYPES = {
    "receivers": {"otlp", "filelog", "hostmetrics", "prometheus"},
    "processors": {"batch", "memory_limiter", "attributes", "resource", "filter", "transform", "resourcedetection"},
    "exporters": {"file", "clickhouse", "otlp", "otlphttp", "debug"},
    "extensions": {"health_check", "file_storage", "pprof", "zpages"},
    "connectors": set(),
}
ID_RE = re.compile(r"^([a-zA-Z][0-9a-zA-Z_]*)(/[^/\s]+)?$")


def check_otel(path):
    problems = []
    cfg = yaml.safe_load(open(path))
    if not isinstance(cfg, dict):
        fail(path, ["not a YAML mapping"])
    problems += [f"unknown top-level key {k!r}" for k in cfg if k not in set(KNOWN_TYPES) | {"service"}]
    defined = {kind: dict(cfg.get(kind) or {}) for kind in KNOWN_TYPES}
    for kind, components in defined.items():
        for cid in components:
            m = ID_RE.match(cid)
            if not m:
                problems.append(f"{kind}: {cid!r} is not a component id (type[/name])")
            elif m.group(1) not in KNOWN_TYPES[kind]:
                problems.append(f"{kind}: unknown component type {m.group(1)!r} (known: {', '.join(sorted(KNOWN_TYPES[kind]))})")
    service = cfg.get("service") or {}
    pipelines = service.get("pipelines") or {}
    if not pipelines:
        problems.append("service.pipelines is empty")
    used = {kind: set() for kind in KNOWN_TYPES}
    for ext in service.get("extensions") or []:
        used["extensions"].add(ext)
        if ext not in defined["extensions"]:
            problems.append(f"service.extensions: {ext!r} is not defined under extensions")
    for pname, pipeline in pipelines.items():
        signal = pname.split("/", 1)[0]
        if signal not in SIGNALS:
            problems.append(f"pipeline {pname!r}: the signal must be one of {sorted(SIGNALS)}")
        problems += [f"pipeline {pname!r}: unknown key {k!r}" for k in pipeline if k not in ("receivers", "processors", "exporters")]
        for kind in ("receivers", "processors", "exporters"):
            names = pipeline.get(kind) or []
            if kind != "processors" and not names:
                problems.append(f"pipeline {pname!r}: no {kind}")
            if len(set(names)) != len(names):
                problems.append(f"pipeline {pname!r}: a {kind[:-1]} is listed twice")
            for name in names:
                if name in defined[kind]:
                    used[kind].add(name)
                elif kind != "processors" and name in defined["connectors"]:
                    used["connectors"].add(name)
                else:
                    problems.append(f"pipeline {pname!r}: {kind[:-1]} {name!r} is not defined under {kind}")
        procs = pipeline.get("processors") or []
        if "memory_limiter" in procs and procs[0] != "memory_limiter":
            problems.append(f"pipeline {pname!r}: memory_limiter must be the first processor")
    for kind in KNOWN_TYPES:
        problems += [f"{kind}: {name!r} is defined but no pipeline uses it" for name in defined[kind] if name not in used[kind]]
    # What README.md and the agent rely on.
    logs = pipelines.get("logs") or {}
    for kind, name in (("receivers", "otlp"), ("processors", "batch"), ("exporters", "file"), ("exporters", "clickhouse")):
        if name not in (logs.get(kind) or []):
            problems.append(f"the logs pipeline must use {kind[:-1]} {name!r}")
    http = (((defined["receivers"].get("otlp") or {}).get("protocols") or {}).get("http")) or {}
    if "http" not in (((defined["receivers"].get("otlp") or {}).get("protocols")) or {}):
        problems.append("receivers.otlp.protocols.http is missing (the agent sends OTLP/HTTP)")
    elif http.get("endpoint") != "0.0.0.0:4318":
        problems.append("receivers.otlp.protocols.http.endpoint must be 0.0.0.0:4318")
    ch = defined["exporters"].get("clickhouse") or {}
    problems += [f"exporters.clickhouse.{k} is missing" for k in ("endpoint", "database", "logs_table_name", "ttl", "create_schema") if k not in ch]
    if not str(ch.get("endpoint", "")).startswith(("tcp://", "http://", "https://", "clickhouse://")):
        problems.append("exporters.clickhouse.endpoint must be a tcp://, http(s):// or clickhouse:// URL")
    fe = defined["exporters"].get("file") or {}
    if not fe.get("path"):
        problems.append("exporters.file.path is missing")
    if not isinstance(fe.get("rotation"), dict):
        problems.append("exporters.file.rotation is missing")
    if problems:
        fail(path, problems)
    print(f"ok: {path} parses; pipelines {', '.join(pipelines)} use only defined components "
          f"({', '.join(f'{k}: {len(v)}' for k, v in used.items() if v)}) and every defined one is used")


if __name__ == "__main__":
    commands = {"alerts": (check_alerts, 2), "dashboard": (check_dashboard, 3), "otel": (check_otel, 1)}
    if len(sys.argv) < 2 or sys.argv[1] not in commands or len(sys.argv) - 2 != commands[sys.argv[1]][1]:
        sys.exit(__doc__)
    try:
        commands[sys.argv[1]][0](*sys.argv[2:])
    except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError, jsonschema.SchemaError) as e:
        fail(" ".join(sys.argv[1:]), [f"{type(e).__name__}: {e}"])
