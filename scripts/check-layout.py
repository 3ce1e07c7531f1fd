#!/usr/bin/env python3
"""Checks the shape of the code (issue 28): no include cycle between the folders of core/ and
the libraries beside it, and no function longer than a limit.

  scripts/check-layout.py [--max-lines N] [--known FILE]

Folders are core/<name>, and registry, web, kernels, plugins as wholes; an include of "X/..."
from a file in folder A is an edge A -> X. A function is a definition at namespace scope in a
.cpp file (an unindented line with a name and '(' that opens a body within a few lines), counted
from that line to its closing brace, literals and comments left out; a lambda counts within its
function, and member functions defined in a class body are not checked.

`--known FILE` lists problems that are known, one per line ("include cycle: A <-> B", "path:
name"): they are reported without failing, and a listed one that is gone fails until it is
taken off, so the list only shrinks. Exits 1 on any problem not listed, and on a listed one that
is fixed.
"""
import argparse
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WHOLE = ["registry", "web", "kernels", "plugins"]
SOURCE = (".h", ".cpp", ".cu", ".cuh")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def folder_of(path):
    """The folder a file belongs to, or None outside the checked tree."""
    parts = os.path.relpath(path, ROOT).split(os.sep)
    if parts[0] == "core" and len(parts) > 2:
        return "core/include" if parts[1] == "include" else "core/" + parts[1]
    if parts[0] in WHOLE:
        return parts[0]
    return None


def folder_of_include(name, known_folders):
    head = name.split("/")[0]
    if "core/" + head in known_folders:
        return "core/" + head
    if head == "tune":
        return "core/include"
    if head in WHOLE:
        return head
    return None


def sources():
    for top in ["core"] + WHOLE:
        for directory, _, files in os.walk(os.path.join(ROOT, top)):
            for name in files:
                if name.endswith(SOURCE):
                    yield os.path.join(directory, name)


def include_edges(files):
    folders = {folder_of(f) for f in files} - {None}
    edges = {}
    for path in files:
        source = folder_of(path)
        if source is None:
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                m = INCLUDE.match(line)
                if not m:
                    continue
                target = folder_of_include(m.group(1), folders)
                if target and target != source:
                    edges.setdefault(source, {}).setdefault(target, os.path.relpath(path, ROOT))
    return edges


def cycles(edges):
    """Each strongly connected set of folders with more than one member, sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(set(edges) | {w for t in edges.values() for w in t}):
        if v not in index:
            visit(v)
    return sorted(found)


# String and character literals (escapes included), whose braces are not the code's.
LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
def long_functions(files, max_lines):
    found = []
    for path in files:
        if not path.endswith(".cpp"):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = [LITERAL.sub('""', line).split("//")[0] for line in f.read().split("\n")]
        i = 0
        while i < len(lines):
            line = lines[i]
            # A definition at namespace scope starts unindented with a name and '(' and opens its
            # body within a few lines (a declaration ends with ';' first).
            if not line or line[0].isspace() or line.startswith(("#", "}", "namespace", "class",
                                                                  "struct", "enum", "using")) \
                    or "(" not in line or "=" in line.split("(")[0]:
                i += 1
                continue
            body = None
            for j in range(i, min(i + 12, len(lines))):
                text = lines[j].rstrip()
                if "{" in text:
                    body = j
                    break
                if text.endswith(";"):
                    break
            if body is None:
                i += 1
                continue
            depth, k = 0, body
            while k < len(lines):
                depth += lines[k].count("{") - lines[k].count("}")
                if depth <= 0:
                    break
                k += 1
            length = k - i + 1
            if length > max_lines:
                name = re.sub(r"\s+", " ", line.split("(")[0]).strip()
                found.append((os.path.relpath(path, ROOT), i + 1, name, length))
            i = k + 1
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-lines", type=int, default=150)
    parser.add_argument("--known", default="")
    args = parser.parse_args()
    files = list(sources())
    problems = []  # (key, text): the key names it in a --known file whatever its line numbers
    edges = include_edges(files)
    for group in cycles(edges):
        members = set(group)
        via = ["%s -> %s (%s)" % (a, b, edges[a][b]) for a in group for b in edges.get(a, {})
               if b in members]
        key = "include cycle: " + " <-> ".join(group)
        problems.append((key, key + " via " + "; ".join(via)))
    for path, line, name, length in long_functions(files, args.max_lines):
        problems.append(("%s: %s" % (path, name),
                         "%s:%d: %s is %d lines, over %d" % (path, line, name, length,
                                                              args.max_lines)))
    known = set()
    if args.known:
        with open(args.known, encoding="utf-8") as f:
            known = {line.strip() for line in f if line.strip() and not line.startswith("#")}
    failed = False
    for key, text in problems:
        print(("known: " if key in known else "error: ") + text)
        failed = failed or key not in known
    for key in sorted(known - {key for key, _ in problems}):
        print("error: '%s' is fixed; remove it from %s" % (key, args.known))
        failed = True
    if not problems:
        print("no include cycle between folders; no function over %d lines" % args.max_lines)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
