#!/usr/bin/env python3
"""Writes a man page (roff) for an apt-layer executable from its argument parser's own description
(`--experimental-dump-help`), the way swift-argument-parser's generate-manual plugin does.
  scripts/manpage.py BINARY SECTION VERSION > page.SECTION"""
import json, os, subprocess, sys


def esc(text):
    text = (text or "").replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(("\\&" + l) if l.startswith((".", "'")) else l for l in text.split("\n"))


def name_of(n):
    return ("-" if n["kind"] == "short" else "--") + n["name"] if n["kind"] in ("short", "long", "longWithSingleDash") else n["name"]


def usage(args):
    parts = []
    for a in args:
        if not a.get("shouldDisplay", True):
            continue
        if a["kind"] == "positional":
            p = f"<{a['valueName']}>" + ("..." if a.get("isRepeating") else "")
        else:
            p = name_of(a["preferredName"]) + (f" <{a['valueName']}>" if a["kind"] == "option" else "")
        parts.append(f"[{p}]" if a.get("isOptional") else p)
    return " ".join(parts)


def options(args, out):
    for a in args:
        if not a.get("shouldDisplay", True):
            continue
        names = ", ".join(name_of(n) for n in a.get("names", [])) or f"<{a['valueName']}>"
        value = f" <{a['valueName']}>" if a["kind"] == "option" else ""
        out.append(".TP")
        out.append(f"\\fB{esc(names)}\\fR{esc(value)}")
        text = a.get("abstract", "")
        if a.get("defaultValue"):
            text += f" (default: {a['defaultValue']})"
        if a.get("allValues"):
            text += " (values: " + ", ".join(a["allValues"]) + ")"
        out.append(esc(text))


def command(cmd, path, out, top):
    if not top:
        out.append(f".SS {esc(' '.join(path))}")
        out.append(esc(cmd.get("abstract", "")))
        out.append(".PP")
        out.append(f"\\fB{esc(' '.join(path))}\\fR {esc(usage(cmd.get('arguments', [])))}")
        if cmd.get("discussion"):
            out.append(".PP")
            out.append(esc(cmd["discussion"]))
        options(cmd.get("arguments", []), out)
    for sub in cmd.get("subcommands", []):
        if sub["commandName"] != "help" and sub.get("shouldDisplay", True):
            command(sub, path + [sub["commandName"]], out, False)


def main():
    binary, section, version = sys.argv[1:4]
    name = os.path.basename(binary)
    d = json.loads(subprocess.run([binary, "--experimental-dump-help"], check=True, capture_output=True, text=True).stdout)["command"]
    subs = [x for x in d.get("subcommands", []) if x["commandName"] != "help"]
    out = [f'.TH "{name.upper()}" "{section}" "" "apt-layer {version}" "apt-layer manual"', ".SH NAME", f"{esc(name)} \\- {esc(d.get('abstract', ''))}",
           ".SH SYNOPSIS", f"\\fB{esc(name)}\\fR " + esc("<subcommand> [options]" if subs else usage(d.get("arguments", [])))]
    if d.get("discussion"):
        out += [".SH DESCRIPTION", esc(d["discussion"])]
    if d.get("arguments"):
        out.append(".SH OPTIONS")
        options(d["arguments"], out)
    if subs:
        out.append(".SH COMMANDS")
        command(d, [name], out, True)
    out += [".SH SEE ALSO", "/usr/share/doc/apt-layer/README.md, /usr/share/doc/apt-layer/docs/"]
    print("\n".join(out))


main()
