#!/usr/bin/env python3
"""Renders chat templates as transformers' apply_chat_template does (jinja2 3.x): an immutable
sandboxed environment with trim_blocks, lstrip_blocks and the loopcontrols extension, its tojson
filter (json.dumps, ensure_ascii=False) and the raise_exception and strftime_now globals.

    render_chat_template.py CASES_JSON

CASES_JSON holds [{"template": "...", "context": {...}}, ...]. Prints a JSON array with, for each
case, {"output": "..."} or {"error": "..."}.
"""
import json
import sys
from datetime import datetime

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(format):
    return datetime.now().strftime(format)


def main(argv):
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    with open(argv[0], encoding="utf-8") as f:
        cases = json.load(f)
    results = []
    for case in cases:
        try:
            results.append({"output": env.from_string(case["template"]).render(**case["context"])})
        except Exception as e:  # the tests compare refusals too
            results.append({"error": str(e)})
    print(json.dumps(results, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
