#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Every `docs/<FILE>.md#<id>` cited in the tree names an anchor (`<a id="...">` or a heading's
# GitHub slug) that exists in that file, and nothing cites a document outside the repository.
# Exits 1 naming each broken citation.
#
#   Scripts/check-doc-links.sh
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - <<'PY'
import pathlib, re, sys
roots = ["Sources", "Tests", "Scripts", "examples-c", "include", "docs", "man", "README.md",
         "CHANGELOG.md", "Makefile", "Package.swift", "Fuzz", "Benchmarks"]
skip = {".build", "corpus"}
def files():
    for r in roots:
        p = pathlib.Path(r)
        if p.is_file():
            yield p
        elif p.is_dir():
            for f in p.rglob("*"):
                if f.is_file() and not (set(f.parts) & skip) and not f.parts[0].startswith(".build"):
                    yield f
def slug(h):
    s = re.sub(r"[^\w\- ]", "", h.strip().lower())
    return s.replace(" ", "-")
anchors = {}
def anchors_of(doc):
    if doc not in anchors:
        p = pathlib.Path("docs") / doc
        if not p.exists():
            anchors[doc] = None
        else:
            t = p.read_text(errors="replace")
            ids = set(re.findall(r'<a id="([^"]+)"', t))
            ids |= {slug(m) for m in re.findall(r"^#+ (.*)$", t, re.M)}
            anchors[doc] = ids
    return anchors[doc]
cite = re.compile(r"(?:docs/)?\b([A-Z][A-Z0-9_-]*\.md)#([A-Za-z0-9_-]+)")
outside = re.compile(r"\.\./shared|/work/shared|SPEC §|SPEC section|SPEC-MAP|DESIGN\.md|§13a")
bad = 0; n = 0
for f in files():
    try:
        text = f.read_text(errors="strict")
    except (UnicodeDecodeError, IsADirectoryError):
        continue
    for i, line in enumerate(text.splitlines(), 1):
        if f.name == "check-doc-links.sh":
            continue
        if outside.search(line):
            print(f"{f}:{i}: cites a document outside the repository: {line.strip()[:120]}"); bad += 1
        for doc, aid in cite.findall(line):
            if doc in ("README.md", "CHANGELOG.md"):
                continue
            n += 1
            ids = anchors_of(doc)
            if ids is None:
                print(f"{f}:{i}: docs/{doc} does not exist"); bad += 1
            elif aid not in ids:
                print(f"{f}:{i}: docs/{doc} has no anchor #{aid}"); bad += 1
print(f"doc links: {n} citations checked, {bad} broken")
sys.exit(1 if bad else 0)
PY
