#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Tests of the user's tools (issue 15): vfioctl (run, topology check/show, state), device
# plug-ins (SWIFTVFIO_DRIVERS) under an unmodified client and through the C ABI, the version
# (header, swiftvfio_version(), .pc, SONAME), the man pages (drift, mandoc lint), and the
# Makefile (install into a prefix, uninstall leaves it empty; DESTDIR; the multiarch libdir; no
# RUNPATH in what is installed).
#
#   Scripts/test-tools.sh            all of it (the install part builds the release files with
#                                    Scripts/dist.sh, reusing .build-dist when it is there)
#
# Needs gcc, python3, Graphviz `dot` and mandoc (.ci/run installs them). Prints figures of
# `vfioctl state` against a running client (the client's call latency alone and while its
# state is read in a loop): measured, reported, never asserted.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
export SWIFT_BACKTRACE=enable=no
command -v swift >/dev/null || export PATH="/opt/swift/usr/bin:$PATH"

tmp="$(mktemp -d)"
client_pid=""
cleanup() {
  [ -n "$client_pid" ] && kill "$client_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

passed=0
ok() { passed=$((passed + 1)); printf '    ok  %s\n' "$*"; }
die() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
# expect STATUS CMD...: runs CMD, stdout in $tmp/out, stderr in $tmp/err; fails unless it exits STATUS.
expect() {
  local want="$1"; shift
  local got=0
  "$@" > "$tmp/out" 2> "$tmp/err" || got=$?
  [ "$got" = "$want" ] || { echo "--- stdout:"; cat "$tmp/out"; echo "--- stderr:"; cat "$tmp/err"; die "exit $got (expected $want): $*"; }
}
has() { grep -qF -- "$2" "$1" || { echo "--- $1:"; cat "$1"; die "$1 lacks: $2"; }; }
step() { printf '\n--> %s\n' "$*"; }

step "build (debug): vfioctl, libswiftvfio.so, libswiftvfio-preload.so"
swift build 2>&1 | grep -Ev '^\[|^Building|^Build of|^Compiling|^Write' || true
B="$root/.build/debug"
V="$B/vfioctl"
[ -x "$V" ] && [ -f "$B/libswiftvfio-preload.so" ] || die "vfioctl or the preload was not built"
CFLAGS=(-std=gnu11 -O1 -g -Wall -Wextra -Werror)
LINK=(-I include -L "$B" -Wl,-rpath,"$B" -lswiftvfio)

# ---- vfioctl: conventions ----------------------------------------------------------------------
step "vfioctl: --help on every command, exit 0 / 1 / 2, errors on stderr"
expect 2 "$V"; has "$tmp/err" "no command given"
expect 0 "$V" --help
for c in "run" "topology check" "topology show" "state"; do
  has "$tmp/out" "vfioctl $c"
done
for c in "run" "topology check" "topology show" "state"; do
  # shellcheck disable=SC2086
  expect 0 "$V" $c --help; has "$tmp/out" "usage: vfioctl $c"
done
expect 0 "$V" topology --help; has "$tmp/out" "vfioctl topology show"
expect 2 "$V" frobnicate; has "$tmp/err" "unknown command 'frobnicate'"
expect 2 "$V" topology; has "$tmp/err" "topology: no subcommand given"
expect 2 "$V" topology check --bogus x; has "$tmp/err" "unknown option '--bogus'"
expect 2 "$V" topology check; has "$tmp/err" "no topology PATH given"
expect 2 "$V" topology show --builtin --format svg; has "$tmp/err" "unknown --format 'svg'"
expect 2 "$V" topology show --builtin --format; has "$tmp/err" "--format needs a FORMAT"
expect 2 "$V" state; has "$tmp/err" "no PID given"
expect 2 "$V" state 12x; has "$tmp/err" "PID '12x' is not a process id"
expect 2 "$V" run; has "$tmp/err" "no PROGRAM given"
ok "usage errors exit 2 naming the mistake; --help exits 0 on all $("$V" --help | grep -c '^  vfioctl ') commands"

# ---- topology check ------------------------------------------------------------------------------
step "vfioctl topology check"
expect 0 "$V" topology check --builtin
has "$tmp/out" "IOMMU group 26: /dev/vfio/26, viable"
has "$tmp/out" "IOMMU group 27: /dev/vfio/27, NOT viable: DMA owned by 0000:06:0e.1 (e1000e)"
has "$tmp/out" "  0000:06:0e.0  driver vfio-pci, VFIO device vfio1"
has "$tmp/out" "IOMMU group 0 (emulated, fake): /dev/vfio/0, viable"
has "$tmp/out" "nodes: /dev/vfio/vfio /dev/iommu /dev/vfio/0 /dev/vfio/26 /dev/vfio/27 /dev/vfio/28"
has "$tmp/out" "config: noiommu off, spapr_tce_iommu off, iommufd on"
ok "built-in topology: groups, members, drivers, viability, nodes, config"
printf '{ "iommu_groups": [ { "id": 1, "devices": [\n  { "name": "x", "drivr": "vfio-pci" } ] } ] }\n' > "$tmp/bad.json"
expect 1 "$V" topology check "$tmp/bad.json"
has "$tmp/err" "$tmp/bad.json: \$.iommu_groups[0].devices[0].drivr: unknown key \"drivr\""
has "$tmp/err" "(line 2, column"
[ ! -s "$tmp/out" ] || die "a failed check printed to stdout"
expect 1 "$V" topology check "$tmp/missing.json"; has "$tmp/err" "$tmp/missing.json"
ok "a bad topology: exit 1, the file, JSON path, line and column on stderr"
# noiommu on and a device without coherency: what the model does with them.
cat > "$tmp/noiommu.json" <<'JSON'
{ "config": { "noiommu": true, "spapr_tce_iommu": false, "iommufd": false },
  "iommu_groups": [ { "id": 3, "devices": [ { "name": "0000:03:00.0", "driver": "vfio-pci", "cache_coherency": false } ] } ],
  "noiommu_devices": [ { "name": "0000:09:00.0", "driver": "vfio-pci" } ],
  "emulated_devices": [] }
JSON
expect 0 "$V" topology check "$tmp/noiommu.json"
has "$tmp/out" "IOMMU group 3: no VFIO node, viable"
has "$tmp/out" "(noiommu, fake): /dev/vfio/noiommu-"
has "$tmp/out" "nodes: /dev/vfio/vfio /dev/vfio/noiommu-"
if grep -q "/dev/iommu" "$tmp/out"; then die "iommufd off but /dev/iommu listed"; fi
ok "no-IOMMU group and a non-coherent vfio-pci device (no node), iommufd off"
# A sysfs-shaped tree: groups 5 (vfio-pci) and 6 (e1000e).
sys="$tmp/sys"
mkdir -p "$sys/devices/pci0000:00" "$sys/bus/pci/devices" "$sys/bus/pci/drivers/vfio-pci" "$sys/bus/pci/drivers/e1000e"
for pair in 5:0000:01:00.0:vfio-pci 6:0000:02:00.0:e1000e; do
  g="${pair%%:*}"; rest="${pair#*:}"; dev="${rest%:*}"; drv="${rest##*:}"
  mkdir -p "$sys/kernel/iommu_groups/$g/devices" "$sys/devices/pci0000:00/$dev"
  ln -s "../../../devices/pci0000:00/$dev" "$sys/bus/pci/devices/$dev"
  ln -s "../../../../devices/pci0000:00/$dev" "$sys/kernel/iommu_groups/$g/devices/$dev"
  ln -s "../../kernel/iommu_groups/$g" "$sys/devices/pci0000:00/$dev/iommu_group"
  ln -s "../../bus/pci/drivers/$drv" "$sys/devices/pci0000:00/$dev/driver"
done
expect 0 "$V" topology check "$sys"
has "$tmp/out" "IOMMU group 5: /dev/vfio/5, viable"
has "$tmp/out" "IOMMU group 6: no VFIO node, NOT viable: DMA owned by 0000:02:00.0 (e1000e)"
ok "a sysfs-shaped directory"

# ---- topology show -------------------------------------------------------------------------------
step "vfioctl topology show: text, JSON, DOT (rendered by Graphviz)"
expect 0 "$V" topology show --builtin
head -n 2 "$tmp/out" | tail -n 1 | grep -qE '^GROUP +KIND +NODE +VIABLE +DEVICE +DRIVER +VFIO$' || die "no table header: $(cat "$tmp/out")"
grep -qE '^27 +iommu +/dev/vfio/27 +no +0000:06:0e\.0 +vfio-pci +vfio1$' "$tmp/out" || die "no row for group 27: $(cat "$tmp/out")"
grep -qE '^ +0000:06:0e\.1 +e1000e +-$' "$tmp/out" || die "no member row for 0000:06:0e.1"
ok "text: one row per device, group columns on the first"
expect 0 "$V" topology show --builtin --format json; cp "$tmp/out" "$tmp/a.json"
expect 0 "$V" topology show "$tmp/a.json" --format json; cmp -s "$tmp/a.json" "$tmp/out" || die "JSON does not round-trip"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert [g["id"] for g in d["iommu_groups"]] == [26, 27, 28], d' "$tmp/a.json"
expect 0 "$V" topology show "$sys" --format json
python3 - "$tmp/out" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["iommu_groups"] == [{"id": 5, "devices": [{"name": "0000:01:00.0", "driver": "vfio-pci"}]},
                             {"id": 6, "devices": [{"name": "0000:02:00.0", "driver": "e1000e"}]}], d
PY
ok "json: normalized, reads back to itself; a sysfs tree comes out as the equivalent JSON"
command -v dot >/dev/null || die "Graphviz dot is not installed (.ci/run installs graphviz)"
for t in builtin noiommu; do
  if [ $t = builtin ]; then expect 0 "$V" topology show --builtin --format dot; else expect 0 "$V" topology show "$tmp/noiommu.json" --format dot; fi
  cp "$tmp/out" "$tmp/$t.dot"
  dot -Tsvg "$tmp/$t.dot" -o "$tmp/$t.svg" 2> "$tmp/dot.err" || die "dot -Tsvg failed: $(cat "$tmp/dot.err")"
  [ ! -s "$tmp/dot.err" ] || die "dot warned: $(cat "$tmp/dot.err")"
done
has "$tmp/builtin.svg" "<svg"
has "$tmp/builtin.svg" "<title>cluster_group_27</title>"
has "$tmp/builtin.svg" ">NOT viable</text>"
has "$tmp/builtin.svg" ">0000:06:0e.1</text>"
has "$tmp/builtin.svg" ">e1000e</text>"
grep -A3 '<title>cluster_group_27</title>' "$tmp/builtin.svg" | grep -q 'stroke="red"' || die "group 27 is not drawn red"
grep -A3 '<title>cluster_group_26</title>' "$tmp/builtin.svg" | grep -q 'stroke="darkgreen"' || die "group 26 is not drawn green"
grep -A3 '<title>cluster_group_0</title>' "$tmp/noiommu.svg" | grep -q 'stroke-dasharray' || die "the no-IOMMU group is not dashed"
ok "dot: dot -Tsvg renders it without a warning; clusters per group, red/green viability, no-IOMMU dashed"

# ---- run -----------------------------------------------------------------------------------------
step "vfioctl run: unmodified clients under the interposer"
gcc "${CFLAGS[@]}" -I Tests/Preload -o "$tmp/vfio_rst" Tests/Preload/test_vfio_rst.c -ldl
expect 0 "$V" run "$tmp/vfio_rst"; has "$tmp/out" "passed, 0 failed"
ok "the vfio.rst sample runs unmodified against the built-in topology"
expect 7 "$V" run sh -c 'exit 7'
expect 0 "$V" run -- sh -c 'echo "$1"' sh --topology; has "$tmp/out" "--topology"
ok "exits with the program's status; the program's own options pass through"
LD_PRELOAD=libm.so.6 expect 0 "$V" run sh -c 'echo "$LD_PRELOAD"'
[ "$(cat "$tmp/out")" = "$(readlink -f "$B/libswiftvfio-preload.so"):libm.so.6" ] || die "LD_PRELOAD is '$(cat "$tmp/out")'"
ok "an LD_PRELOAD already set is kept, after the interposer"
expect 0 "$V" run --trace "$tmp/trace.txt" "$tmp/vfio_rst"
has "$tmp/trace.txt" "open(\"/dev/vfio/26\""
has "$tmp/trace.txt" "exit_files() = "
expect 0 "$V" run --trace - "$tmp/vfio_rst"; has "$tmp/err" "VFIO_GROUP_GET_STATUS"
ok "--trace FILE and --trace - (standard error)"
expect 0 "$V" run --topology "$tmp/noiommu.json" sh -c 'echo "$SWIFTVFIO_TOPOLOGY"'; has "$tmp/out" "$tmp/noiommu.json"
expect 1 "$V" run --topology "$tmp/bad.json" touch "$tmp/ran"
has "$tmp/err" "unknown key \"drivr\""
[ ! -e "$tmp/ran" ] || die "the program ran with a bad topology"
expect 1 "$V" run --preload "$tmp/none.so" true; has "$tmp/err" "--preload $tmp/none.so"
expect 1 "$V" run "$tmp/no-such-program"; has "$tmp/err" "cannot run '$tmp/no-such-program'"
expect 1 "$V" run --trace /proc/nope/trace true; has "$tmp/err" "--trace /proc/nope/trace"
ok "a bad topology, preload, trace path or program: exit 1 with the reason, the program not run"

# ---- state ---------------------------------------------------------------------------------------
step "vfioctl state: a running client's model (SWIFTVFIO_CONTROL=1)"
gcc "${CFLAGS[@]}" -O2 -o "$tmp/state_client" Tests/Tools/state_client.c
mkfifo "$tmp/to" "$tmp/from"
SWIFTVFIO_CONTROL=1 "$V" run "$tmp/state_client" < "$tmp/to" > "$tmp/from" &
client_pid=$!
exec 7> "$tmp/to" 8< "$tmp/from"
read -r line <&8; [ "$line" = ready ] || die "client: $line"
sock="/tmp/swiftvfio-$(id -u)/$client_pid.sock"
[ -S "$sock" ] || die "no control socket $sock"
[ "$(stat -c %a "$sock")" = 600 ] && [ "$(stat -c %a "$(dirname "$sock")")" = 700 ] || die "socket/dir modes $(stat -c %a "$sock") $(stat -c %a "$(dirname "$sock")")"
ok "the socket: $sock, 0600 in a 0700 directory"
expect 0 "$V" state "$client_pid"
cp "$tmp/out" "$tmp/state.txt"
has "$tmp/out" "process $client_pid (state_client)"
has "$tmp/out" ": /dev/vfio/vfio [container] -> container0"
has "$tmp/out" ": /dev/vfio/26 [group] -> group 26"
has "$tmp/out" ": [vfio-device] [device] -> 0000:06:0d.0 (vfio0) via container"
has "$tmp/out" "/dev/vfio/26 (IOMMU group 26, iommu): open, container0"
has "$tmp/out" "container0: backend vfio-iommu-type1, groups /dev/vfio/26"
has "$tmp/out" "DMA iova 0x100000 size 0x100000"
has "$tmp/out" "0000:06:0d.0 (vfio0, vfio-pci): open count 1, kvm none"
has "$tmp/out" "0000:07:00.0 (vfio2, vfio-pci): open count 0"
has "$tmp/out" "census: files 3, fds 3, groups 4, containers 1"
has "$tmp/out" "warnings 0"
ok "text: fds, groups with their container, the container's backend and DMA mapping, devices, census"
expect 0 "$V" state "$client_pid" --format json; cp "$tmp/out" "$tmp/state1.json"
expect 0 "$V" state "$client_pid" --format json; cp "$tmp/out" "$tmp/state2.json"
python3 - "$tmp/state1.json" "$tmp/state2.json" "$client_pid" <<'PY'
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert a["pid"] == int(sys.argv[3]), a["pid"]
assert [f["kind"] for f in a["files"]] == ["container", "group", "device"], a["files"]
assert all(f["fd"] >= 3 for f in a["files"]), a["files"]
c = a["containers"][0]
assert c["backend"] == "vfio-iommu-type1" and c["groups"] == ["/dev/vfio/26"], c
assert c["dma_mappings"][0]["iova"] == "0x100000" and c["dma_mappings"][0]["size"] == "0x100000", c
g26 = [g for g in a["groups"] if g["iommu_group"] == 26][0]
assert g26["open"] and g26["container"] == "container0" and g26["iommufd"] is None, g26
d = [d for d in a["devices"] if d["name"] == "0000:06:0d.0"][0]
assert d["open_count"] == 1 and d["driver"] == "vfio-pci" and d["kvm"] is None, d
assert a["census"]["files"] == 3 and a["census"]["warnings"] == 0, a["census"]
assert a["log"] == [], a["log"]
# Reading the state changed nothing: the second reading equals the first.
del a["snapshot_ns"], b["snapshot_ns"]
assert a == b, "the state changed between two readings"
PY
ok "json: the same facts; two readings identical (reading changes nothing)"
# How long the client's own calls wait while its state is read: figures, not assertions.
echo "measure 1000" >&7; read -r alone <&8
echo "measure 1000" >&7
reads=0; t0=$(date +%s%N)
while [ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 1000 ]; do "$V" state "$client_pid" > /dev/null; reads=$((reads + 1)); done
read -r loaded <&8
snap_us=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["snapshot_ns"] // 1000)' "$tmp/state1.json")
echo "    figures: GET_STATUS alone: $alone"
echo "    figures: GET_STATUS while vfioctl state ran $reads times: $loaded"
echo "    figures: one snapshot holds the model ${snap_us} us (debug build)"
echo quit >&7; exec 7>&- 8<&-
wait "$client_pid" || die "the client failed"
client_pid=""
[ ! -e "$sock" ] || die "the socket $sock is still there after exit"
ok "the client exits 0; its socket is removed at exit"
expect 1 "$V" state "$$"; has "$tmp/err" "process $$ does not answer"
expect 1 "$V" state 4194303; has "$tmp/err" "no process 4194303"
ok "a process that did not opt in, a process that does not exist: exit 1 with the reason"

# ---- plug-ins ------------------------------------------------------------------------------------
step "device plug-ins: SWIFTVFIO_DRIVERS with an unmodified client and through the C ABI"
make -s -C examples-c plugin BUILD="$tmp/ex" CC=gcc SWIFTVFIO_LIBDIR="$B" PKG_CONFIG=false > /dev/null
plugin="$tmp/ex/libmtty-plugin.so"
topo="$root/examples-c/mtty-topology.json"
gcc "${CFLAGS[@]}" -o "$tmp/plugin_client" Tests/Tools/plugin_client.c
SWIFTVFIO_DRIVERS="$plugin" expect 0 "$V" run --topology "$topo" "$tmp/plugin_client"
has "$tmp/out" "plugin_client: 31 checks passed"
ok "an unmodified client under vfioctl run opens the plug-in's device (group 40), reads and writes its regions"
expect 1 "$V" run --topology "$topo" "$tmp/plugin_client"; has "$tmp/err" "open /dev/vfio/40 (errno No such file or directory)"
ok "without the plug-in, mtty is a kernel driver: no VFIO device, no /dev/vfio/40"
gcc "${CFLAGS[@]}" -o "$tmp/plugin_cabi" Tests/Tools/plugin_cabi.c "${LINK[@]}"
SWIFTVFIO_DRIVERS="$plugin" SWIFTVFIO_TOPOLOGY="$topo" expect 0 "$tmp/plugin_cabi" good "$topo"
has "$tmp/out" "plugin_cabi good: 33 checks passed"
ok "C ABI: the device through swiftvfio_open/ioctl/pread, unbound and rebound across topology loads, register's errnos"
reasons=("no swiftvfio_plugin_init()" "swiftvfio_plugin_init() failed: ENODEV"
         "registering a driver failed: EINVAL: driver \"vfio-bad\"" "swiftvfio_plugin_init() registered no driver")
for k in 1 2 3 4; do
  gcc "${CFLAGS[@]}" -fPIC -shared -DBAD_KIND=$k -o "$tmp/bad$k.so" Tests/Tools/bad_plugin.c "${LINK[@]}"
  SWIFTVFIO_DRIVERS="$plugin:$tmp/bad$k.so" SWIFTVFIO_TOPOLOGY="$topo" expect 0 "$tmp/plugin_cabi" bad "$topo" "$tmp/bad$k.so"
  has "$tmp/out" "SWIFTVFIO_DRIVERS: $tmp/bad$k.so: ${reasons[$((k - 1))]}"
  SWIFTVFIO_DRIVERS="$plugin:$tmp/bad$k.so" expect 1 "$V" run --topology "$topo" "$tmp/plugin_client"
  has "$tmp/err" "SWIFTVFIO_DRIVERS: $tmp/bad$k.so: ${reasons[$((k - 1))]}"
done
SWIFTVFIO_DRIVERS="$tmp/none.so" expect 1 "$V" run --topology "$topo" "$tmp/plugin_client"
has "$tmp/err" "SWIFTVFIO_DRIVERS: $tmp/none.so: No such file or directory"
SWIFTVFIO_DRIVERS="libmtty-plugin.so" expect 1 "$V" run --topology "$topo" "$tmp/plugin_client"
has "$tmp/err" "SWIFTVFIO_DRIVERS: libmtty-plugin.so: not an absolute path"
ok "4 broken plug-ins, a missing and a relative one: the file and the reason; no driver of the list left registered, no model"

# The model of a C ABI program with a plug-in device, read by vfioctl state.
mkfifo "$tmp/cto" "$tmp/cfrom"
SWIFTVFIO_CONTROL=1 SWIFTVFIO_DRIVERS="$plugin" SWIFTVFIO_TOPOLOGY="$topo" "$tmp/plugin_cabi" control "$topo" < "$tmp/cto" > "$tmp/cfrom" &
client_pid=$!
exec 7> "$tmp/cto" 8< "$tmp/cfrom"
read -r line <&8; [ "$line" = ready ] || die "plugin_cabi control: $line"
expect 0 "$V" state "$client_pid"
has "$tmp/out" "0000:00:05.0 (vfio1, mtty): open count 1"
has "$tmp/out" "/dev/vfio/40 (IOMMU group 40, iommu): open, container0"
echo done >&7; exec 7>&-; cat <&8 > "$tmp/control.out"; exec 8<&-; has "$tmp/control.out" "checks passed"
wait "$client_pid" || die "plugin_cabi control failed"
client_pid=""
ok "vfioctl state of a C ABI program: the plug-in's device, driver mtty, open count 1"

# ---- version -------------------------------------------------------------------------------------
step "version: VERSION, the header's macros, swiftvfio_version()"
version="$(tr -d ' \n' < VERSION)"
IFS=. read -r vmaj vmin vpat <<< "$version"
has include/swiftvfio.h "#define SWIFTVFIO_VERSION_MAJOR $vmaj"
has include/swiftvfio.h "#define SWIFTVFIO_VERSION_MINOR $vmin"
has include/swiftvfio.h "#define SWIFTVFIO_VERSION_PATCH $vpat"
has include/swiftvfio.h "#define SWIFTVFIO_VERSION_STRING \"$version\""
gcc "${CFLAGS[@]}" -o "$tmp/version" Tests/Tools/version.c "${LINK[@]}"
expect 0 "$tmp/version"
[ "$(cat "$tmp/out")" = "$version $vmaj $vmin $vpat $((vmaj * 10000 + vmin * 100 + vpat))" ] || die "version program: $(cat "$tmp/out")"
ok "header macros and swiftvfio_version() say $version"

# ---- man pages -----------------------------------------------------------------------------------
step "man pages: generated from the header (drift), mandoc -T lint"
Scripts/gen-man.sh --check > /dev/null || die "man/man3 drifted: run Scripts/gen-man.sh"
command -v mandoc >/dev/null || die "mandoc is not installed (.ci/run installs it)"
pages=(man/man1/*.1 man/man3/*.3 man/man5/*.5 man/man7/*.7)
lint="$(mandoc -T lint -W style "${pages[@]}" 2>&1 || true)"
[ -z "$lint" ] || { echo "$lint"; die "mandoc -T lint complains"; }
for f in $(Scripts/abi-symbols.sh); do [ -f "man/man3/$f.3" ] || die "no man page for $f"; done
# Every page's title line names the release it documents (the hand-written ones are bumped with VERSION).
stale_pages="$(grep -L "^\.TH .* \"libswiftvfio $(tr -d ' \n' < VERSION)\"" "${pages[@]}" || true)"
[ -z "$stale_pages" ] || die "man pages whose .TH does not say libswiftvfio $(tr -d ' \n' < VERSION): $stale_pages"
mandoc -T utf8 man/man3/vfio_file_set_kvm.3 | grep -q "Models vfio_file_set_kvm() of Linux v6.3" || die "vfio_file_set_kvm(3) does not render"
ok "${#pages[@]} pages, one per exported function ($(Scripts/abi-symbols.sh | wc -l)) plus swiftvfio(3), vfioctl(1), swiftvfio-topology(5), swiftvfio(7); lint clean; each .TH says libswiftvfio $(tr -d ' \n' < VERSION)"

# ---- Makefile: install, uninstall ----------------------------------------------------------------
step "make install PREFIX=... / make uninstall (release build: Scripts/dist.sh)"
prefix="$tmp/prefix"
mkdir -p "$prefix"
make -s install PREFIX="$prefix" > "$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; die "make install failed"; }
for f in include/swiftvfio.h lib/libswiftvfio.so.$vmaj lib/libswiftvfio.so lib/libswiftvfio.a lib/libswiftvfio-preload.so \
         lib/pkgconfig/swiftvfio.pc bin/vfioctl share/man/man1/vfioctl.1 share/man/man3/swiftvfio_open.3 \
         share/man/man5/swiftvfio-topology.5 share/man/man7/swiftvfio.7; do
  [ -e "$prefix/$f" ] || die "make install did not install $f"
done
[ "$(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --modversion swiftvfio)" = "$version" ] || die ".pc version"
soname="$(readelf -d "$prefix/lib/libswiftvfio.so.$vmaj" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')"
[ "$soname" = "libswiftvfio.so.$vmaj" ] || die "SONAME $soname"
gcc "${CFLAGS[@]}" -o "$tmp/version-installed" Tests/Tools/version.c $(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs swiftvfio) -Wl,-rpath,"$prefix/lib"
expect 0 "$tmp/version-installed"; has "$tmp/out" "$version $vmaj $vmin $vpat"
ok "version $version: VERSION = header = swiftvfio_version() of the installed library = .pc = SONAME libswiftvfio.so.$vmaj"
expect 0 "$prefix/bin/vfioctl" run "$tmp/vfio_rst"; has "$tmp/out" "passed, 0 failed"
expect 0 "$prefix/bin/vfioctl" topology check --builtin
MANPATH="$prefix/share/man" man -w vfioctl > /dev/null 2>&1 || [ -f "$prefix/share/man/man1/vfioctl.1" ]
ok "installed vfioctl finds the interposer in ../lib; man pages under share/man"
make -s uninstall PREFIX="$prefix" > "$tmp/uninstall.log" 2>&1 || { cat "$tmp/uninstall.log"; die "make uninstall failed"; }
left="$(cd "$prefix" && find . -mindepth 1)"
[ -z "$left" ] || die "make uninstall left: $left"
ok "make uninstall leaves the prefix empty"
make -s install PREFIX=/usr DESTDIR="$tmp/stage" > "$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; die "make install DESTDIR failed"; }
has "$tmp/stage/usr/lib/pkgconfig/swiftvfio.pc" "prefix=/usr"
make -s uninstall PREFIX=/usr DESTDIR="$tmp/stage" > /dev/null 2>&1
left="$(cd "$tmp/stage/usr" && find . -mindepth 1)"
[ -z "$left" ] || die "make uninstall DESTDIR left: $left"
expect 1 bash Scripts/dist.sh --uninstall "$prefix"; has "$tmp/err" "nothing installed there"
ok "DESTDIR: files under DESTDIR, the .pc says PREFIX; uninstall of nothing is an error"

# A distribution's layout: the multiarch libdir (Debian: /usr/lib/x86_64-linux-gnu), and no
# RUNPATH/RPATH in anything installed (the loader's own search finds the library; the Swift
# runtime is linked in, so there is nothing else to find).
step "make install libdir=PREFIX/lib/<multiarch>: the libraries and .pc there, no RUNPATH, uninstall"
triplet="$(gcc -print-multiarch)"; [ -n "$triplet" ] || triplet="$(uname -m)-linux-gnu"
mkdir -p "$prefix"
make -s install PREFIX="$prefix" libdir="$prefix/lib/$triplet" > "$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; die "make install libdir= failed"; }
for f in lib/$triplet/libswiftvfio.so.$vmaj lib/$triplet/libswiftvfio.so lib/$triplet/libswiftvfio.a \
         lib/$triplet/libswiftvfio-preload.so lib/$triplet/pkgconfig/swiftvfio.pc lib/$triplet/pkgconfig/swiftvfio-static.pc \
         include/swiftvfio.h bin/vfioctl; do
  [ -e "$prefix/$f" ] || die "make install libdir= did not install $f"
done
[ ! -e "$prefix/lib/libswiftvfio.so" ] || die "make install libdir= still installed lib/libswiftvfio.so"
export PKG_CONFIG_PATH="$prefix/lib/$triplet/pkgconfig"
[ "$(pkg-config --variable=libdir swiftvfio)" = "$prefix/lib/$triplet" ] || die ".pc libdir: $(pkg-config --variable=libdir swiftvfio)"
libs="$(pkg-config --libs swiftvfio)"; libs="${libs% }"
[ "$libs" = "-L$prefix/lib/$triplet -lswiftvfio" ] || die ".pc Libs: $libs"
pkg-config --libs swiftvfio-static | grep -qF "$prefix/lib/$triplet/libswiftvfio.a" || die "swiftvfio-static.pc: $(pkg-config --libs swiftvfio-static)"
gcc "${CFLAGS[@]}" -o "$tmp/version-multiarch" Tests/Tools/version.c $(pkg-config --cflags --libs swiftvfio)
unset PKG_CONFIG_PATH
LD_LIBRARY_PATH="$prefix/lib/$triplet" expect 0 "$tmp/version-multiarch"; has "$tmp/out" "$version $vmaj $vmin $vpat"
ok "libdir=$prefix/lib/$triplet: libraries and pkgconfig/ there, nothing in lib/; the .pc's libdir and Libs follow; a program built through it runs"
for f in "$prefix/lib/$triplet/libswiftvfio.so.$version" "$prefix/lib/$triplet/libswiftvfio-preload.so" "$prefix/bin/vfioctl"; do
  readelf -dW "$f" > "$tmp/dyn" || die "readelf -d $f"
  grep -q "(NEEDED)" "$tmp/dyn" || die "readelf -d $f shows no NEEDED entries (not a dynamic object?)"
  ! grep -E "\((RUNPATH|RPATH)\)" "$tmp/dyn" || die "$f carries a RUNPATH/RPATH"
  ! grep -F -e "$root" -e '$ORIGIN' "$tmp/dyn" || die "$f names a build-tree path or \$ORIGIN"
done
ok "no RUNPATH/RPATH, no \$ORIGIN, no build-tree path in libswiftvfio.so.$version, the preload or vfioctl (readelf -d)"
expect 0 "$prefix/bin/vfioctl" run "$tmp/vfio_rst"; has "$tmp/out" "passed, 0 failed"
ok "installed vfioctl finds the interposer in ../lib/$triplet; the interposer loads libswiftvfio.so.$vmaj beside itself without RUNPATH"
has "$prefix/share/libswiftvfio/manifest" "lib/$triplet/libswiftvfio.so.$vmaj"
make -s uninstall PREFIX="$prefix" > "$tmp/uninstall.log" 2>&1 || { cat "$tmp/uninstall.log"; die "make uninstall (libdir) failed"; }
left="$(cd "$prefix" && find . -mindepth 1)"
[ -z "$left" ] || die "make uninstall (libdir) left: $left"
expect 0 bash Scripts/dist.sh --no-build --install "$prefix" --libdir lib64
[ -e "$prefix/lib64/libswiftvfio.so.$vmaj" ] && [ ! -e "$prefix/lib" ] || die "--libdir lib64 (relative to PREFIX): $(cd "$prefix" && find . -maxdepth 2)"
has "$prefix/lib64/pkgconfig/swiftvfio.pc" 'libdir=${exec_prefix}/lib64'
expect 0 bash Scripts/dist.sh --uninstall "$prefix"
[ -z "$(cd "$prefix" && find . -mindepth 1)" ] || die "uninstall (lib64) left files"
expect 2 bash Scripts/dist.sh --install "$prefix" --libdir /elsewhere/lib; has "$tmp/err" "not under PREFIX"
expect 2 bash Scripts/dist.sh --install "$prefix" --libdir "lib/../.."; has "$tmp/err" "not a directory below PREFIX"
ok "make uninstall removes the multiarch install by its manifest, prefix left empty; a relative libdir (lib64) works too; a libdir outside PREFIX is refused"
[ "$(make -n check | tail -n 1)" = "PATH=\"$(dirname "$(command -v swift)")/:\$PATH\" bash Scripts/test.sh" ] || make -n check | grep -q "bash Scripts/test.sh" || die "make check does not run Scripts/test.sh"
ok "make check runs the README's test command"

# ---- sanitizers ------------------------------------------------------------------------------------
step "plug-ins and the control socket against the ASan and TSan libraries (clang -fsanitize)"
swiftlib="$(dirname "$(dirname "$(readlink -f "$(command -v swift)")")")/lib/swift/linux"
for san in address thread; do
  sdir="$root/.build-$([ $san = address ] && echo asan || echo tsan)/debug"
  if [ ! -f "$sdir/libswiftvfio.so" ]; then
    echo "    SKIPPED -fsanitize=$san: no $sdir/libswiftvfio.so (Scripts/test-c.sh --sanitize=$san builds it; Scripts/test.sh runs it first)"
    continue
  fi
  sflags=(-fsanitize=$san -fno-omit-frame-pointer -fuse-ld=lld)
  [ $san = thread ] && sflags+=(-L "$swiftlib" -Wl,-rpath,"$swiftlib" -ldispatch -lBlocksRuntime)
  slink=(-I include -L "$sdir" -Wl,-rpath,"$sdir" -lswiftvfio)
  sb="$tmp/san-$san"; mkdir -p "$sb"
  clang "${CFLAGS[@]}" -fPIC -shared -o "$sb/libmtty-plugin.so" examples-c/mtty_plugin.c examples-c/mtty.c "${slink[@]}" "${sflags[@]}" -pthread
  clang "${CFLAGS[@]}" -fPIC -shared -DBAD_KIND=3 -o "$sb/bad3.so" Tests/Tools/bad_plugin.c "${slink[@]}" "${sflags[@]}"
  clang "${CFLAGS[@]}" -o "$sb/plugin_cabi" Tests/Tools/plugin_cabi.c "${slink[@]}" "${sflags[@]}"
  export ASAN_OPTIONS=detect_leaks=1 TSAN_OPTIONS=halt_on_error=1
  SWIFTVFIO_DRIVERS="$sb/libmtty-plugin.so" SWIFTVFIO_TOPOLOGY="$topo" expect 0 "$sb/plugin_cabi" good "$topo"
  has "$tmp/out" "checks passed"
  SWIFTVFIO_DRIVERS="$sb/libmtty-plugin.so:$sb/bad3.so" SWIFTVFIO_TOPOLOGY="$topo" expect 0 "$sb/plugin_cabi" bad "$topo" "$sb/bad3.so"
  rm -f "$tmp/cto" "$tmp/cfrom"; mkfifo "$tmp/cto" "$tmp/cfrom"
  SWIFTVFIO_CONTROL=1 SWIFTVFIO_DRIVERS="$sb/libmtty-plugin.so" SWIFTVFIO_TOPOLOGY="$topo" "$sb/plugin_cabi" control "$topo" < "$tmp/cto" > "$tmp/cfrom" 2> "$sb/control.err" &
  client_pid=$!
  exec 7> "$tmp/cto" 8< "$tmp/cfrom"
  read -r line <&8; [ "$line" = ready ] || { cat "$sb/control.err"; die "plugin_cabi control ($san): $line"; }
  for _ in 1 2 3 4 5; do expect 0 "$V" state "$client_pid" --format json; done
  has "$tmp/out" '"driver": "mtty"'
  echo done >&7; exec 7>&-; cat <&8 > "$tmp/control.out"; exec 8<&-; has "$tmp/control.out" "checks passed"
  wait "$client_pid" || { cat "$sb/control.err" "$tmp/cfrom" 2>/dev/null; die "plugin_cabi control failed under -fsanitize=$san"; }
  client_pid=""
  unset ASAN_OPTIONS TSAN_OPTIONS
  ok "-fsanitize=$san: plug-in load, bind, rebind, a refused plug-in, and vfioctl state of the running program: clean"
done

printf '\ntest-tools: %d checks passed\n' "$passed"
