#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The list of functions libswiftvfio.so exports, derived from include/swiftvfio.h, and the symbol
# version node of each, from Scripts/abi-nodes.txt: the one source of truth for the release
# library's linker version script (Scripts/dist.sh), the export check (Scripts/abi-check.sh) and
# the Debian symbols check (Scripts/test-deb.sh).
#
#   Scripts/abi-symbols.sh                     the function names, sorted, one a line
#   Scripts/abi-symbols.sh --nodes             `name NODE` for each function, sorted by name
#   Scripts/abi-symbols.sh --node-list         `NODE RELEASE [PARENT]` for each node, in order
#   Scripts/abi-symbols.sh --version-script    the linker version script (every node)
#
# Every mode first checks that the header's functions and the nodes agree: a function of the
# header in no node (or in two), a node's function the header lacks, a node out of order, named
# against its release or not inheriting the node above it fails, naming the cause.
#
# Environment: HEADER (default include/swiftvfio.h), NODES (default Scripts/abi-nodes.txt),
# VERSION_FILE (default VERSION). Needs gcc: -aux-info is a gcc option.
#
# How: the compiler parses the header (gcc -aux-info writes one line per function declaration it
# saw, with file and line), so a declaration hidden behind a macro, an #if or an odd layout is seen
# as the compiler sees it, not as a regular expression guesses. The library's functions are the
# ones declared in the header's "/* ==== ... */" sections (Scripts/gen-header.sh writes every
# `@c` export there); the declarations before them are the ones the KVM side provides
# (kvm_get_kvm_safe, kvm_put_kvm), which the library imports with dlsym and must not export.
# A plain text parse of the same sections must agree, or the script fails: if the two ever
# disagree the header has something neither parse expects, and a human should look.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=list
case "${1:-}" in
  --version-script) mode=map ;;
  --nodes) mode=nodes ;;
  --node-list) mode=nodelist ;;
  "") ;;
  *) echo "usage: $0 [--nodes | --node-list | --version-script]" >&2; exit 2 ;;
esac

cc=gcc
header="${HEADER:-include/swiftvfio.h}"
nodes="${NODES:-Scripts/abi-nodes.txt}"
version="$(tr -d ' \n' < "${VERSION_FILE:-VERSION}")"
header_abs="$(cd "$(dirname "$header")" && pwd)/$(basename "$header")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

first_section="$(grep -n '^/\* ==== ' "$header" | head -n 1 | cut -d: -f1)"
[ -n "$first_section" ] || { echo "$0: no '/* ==== ' section in $header" >&2; exit 1; }

printf '#include "%s"\n' "$header_abs" > "$tmp/h.c"
"$cc" -std=c11 -fsyntax-only -aux-info "$tmp/aux" "$tmp/h.c"
# Lines look like: /* /abs/include/swiftvfio.h:167:NC */ extern struct iommu_group *vfio_file_iommu_group (struct file *);
awk -v h="$header_abs" -v first="$first_section" '
  $1 == "/*" {
    n = split($2, loc, ":")
    if (n < 3 || loc[1] != h || loc[2] + 0 < first) next
    d = $0
    sub(/^\/\*[^*]*\*\/ */, "", d)
    sub(/ *\(.*/, "", d)
    sub(/.*[ *]/, "", d)
    print d
  }' "$tmp/aux" | sort -u > "$tmp/compiled"

# The same sections read as text (the parse Scripts/test-c.sh uses).
awk '/^\/\* ==== / { on = 1 } on && /^[a-z].*\(.*\);$/ { sub(/\(.*/, ""); sub(/.*[ *]/, ""); print }' \
  "$header" | sort -u > "$tmp/text"
if ! diff -u "$tmp/text" "$tmp/compiled" >&2; then
  echo "$0: the compiler and the text parse of $header disagree (diff above: - text, + compiler)" >&2
  exit 1
fi
[ -s "$tmp/compiled" ] || { echo "$0: no functions found in $header" >&2; exit 1; }

# ---- the nodes (Scripts/abi-nodes.txt) ---------------------------------------------------------
# $tmp/nodes: `name NODE`; $tmp/nodelist: `NODE RELEASE [PARENT]`. The file's own rules are checked
# here, where the version script is made, so no release library is linked from a list that breaks them.
[ -f "$nodes" ] || { echo "$0: no $nodes" >&2; exit 1; }
awk -v major="${version%%.*}" -v f="$nodes" -v names="$tmp/nodes" -v list="$tmp/nodelist" '
  function bad(m) { printf "%s:%d: %s\n", f, NR, m > "/dev/stderr"; err = 1 }
  /^#/ || /^[ \t]*$/ { next }
  /^[^ \t]/ {
    node = $1; rel = $2; parent = $3; n++
    if (NF < 2 || NF > 3 || rel !~ /^[0-9]+\.[0-9]+\.[0-9]+$/) { bad("a node line is NODE RELEASE [PARENT]: " $0); next }
    split(rel, v, ".")
    if (v[1] != major) bad(node ": release " rel " is not of MAJOR " major " (VERSION)")
    want = (n == 1) ? "LIBSWIFTVFIO_" major : "LIBSWIFTVFIO_" major "." v[2]
    if (node != want) bad(node ": the node of release " rel " is named " want " (docs/VERSIONING.md)")
    if (n == 1 && parent != "") bad(node ": the first node inherits nothing")
    if (n > 1 && parent != prev) bad(node ": inherits " (parent == "" ? "nothing" : parent) ", not the node above it, " prev)
    if (n > 1 && (v[2] + 0 < pv2 + 0 || (v[2] == pv2 && v[3] + 0 <= pv3 + 0))) bad(node ": release " rel " is not after " prevrel)
    if (node in seen) bad(node ": named twice")
    seen[node] = 1; prev = node; prevrel = rel; pv2 = v[2]; pv3 = v[3]
    print $0 > list
    next
  }
  {
    if (n == 0) { bad("a function before the first node: " $1); next }
    if (NF != 1 || $1 !~ /^[a-z_][a-z_0-9]*$/) { bad("a function line is one name: " $0); next }
    if ($1 in where) bad($1 ": in " where[$1] " and in " node)
    where[$1] = node
    print $1, node > names
  }
  END { if (n == 0) bad("no node"); exit err }' "$nodes" || { echo "$0: $nodes is malformed (above)" >&2; exit 1; }
LC_ALL=C sort -o "$tmp/nodes" "$tmp/nodes"
unplaced="$(cut -d' ' -f1 "$tmp/nodes" | LC_ALL=C sort | LC_ALL=C comm -13 - <(LC_ALL=C sort "$tmp/compiled"))"
stale="$(cut -d' ' -f1 "$tmp/nodes" | LC_ALL=C sort | LC_ALL=C comm -23 - <(LC_ALL=C sort "$tmp/compiled"))"
if [ -n "$unplaced" ]; then
  echo "$0: in $header but in no symbol version node of $nodes:" $unplaced >&2
  echo "    put each new function in the node of the next release (docs/VERSIONING.md, \"Symbol versions\")" >&2
fi
if [ -n "$stale" ]; then
  echo "$0: named in $nodes but not declared in $header:" $stale >&2
  echo "    removing or renaming an exported function is an incompatible change (docs/VERSIONING.md)" >&2
fi
[ -z "$unplaced$stale" ] || exit 1

case $mode in
  list) cat "$tmp/compiled" ;;
  nodes) cat "$tmp/nodes" ;;
  nodelist) cat "$tmp/nodelist" ;;
  map)
    cat <<EOF
/* libswiftvfio.so.${version%%.*} linker version script. GENERATED by Scripts/abi-symbols.sh from
 * $nodes (which function is in which node), checked against $header;
 * do not edit. docs/VERSIONING.md says how nodes are added: a release that adds functions adds a
 * node LIBSWIFTVFIO_MAJOR.MINOR that inherits the one before; an existing node never changes. */
EOF
    first=1
    while read -r node rel parent; do
      printf '%s {\n  global:\n' "$node"
      awk -v n="$node" '$2 == n { print "    " $1 ";" }' "$tmp/nodes"
      if [ $first = 1 ]; then printf '  local:\n    *;\n};\n'; else printf '} %s;\n' "$parent"; fi
      first=0
    done < "$tmp/nodelist"
    ;;
esac
