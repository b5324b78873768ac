#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The Debian packages (debian/): built, linted, unpacked and used, as a distribution would.
#   1. debian/changelog's version is VERSION's, the runtime package is named after the SONAME;
#   2. `dpkg-buildpackage -us -uc -b` on a copy of the tree (the clone is never written to): a
#      real release build by debian/rules (Scripts/dist.sh), kept in .build-deb/ so a second run
#      rebuilds only what changed (-nc: no pre-clean, the copy is synced file by file, unchanged
#      files keep their inode and mtime, so SwiftPM recompiles nothing it need not);
#   3. lintian on the .changes (every .deb): the tags are printed, any error (E:) fails;
#   4. the packages' contents: the files each must hold, no RUNPATH/RPATH anywhere, the library's
#      SONAME, the symbols file, the shlibs dependencies;
#   5. the .debs unpacked into a scratch root with `dpkg -x` (never installed), examples-c as
#      shipped in libswiftvfio-dev built with pkg-config pointed at the unpacked .pc files and run
#      with LD_LIBRARY_PATH (no RUNPATH, no toolchain path), and an unmodified client run through
#      the unpacked vfioctl and its interposer.
#
#   Scripts/test-deb.sh
#
# Needs dpkg-dev, debhelper, lintian and fakeroot (.ci/run installs them; so does this script when
# run as root; otherwise it skips, or fails under CI=true), and swift (PATH, or /opt/swift/usr/bin). Prints the time of the package build and of lintian (reported, not asserted).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
export SWIFT_BACKTRACE=enable=no
command -v swift >/dev/null || export PATH="/opt/swift/usr/bin:$PATH"
unset SWIFTVFIO_TOPOLOGY LD_PRELOAD LD_LIBRARY_PATH PKG_CONFIG_PATH

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
passed=0
ok() { passed=$((passed + 1)); printf '    ok  %s\n' "$*"; }
die() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
step() { printf '\n--> %s\n' "$*"; }
has() { grep -qF -- "$2" "$1" || { echo "--- $1:"; cat "$1"; die "$1 lacks: $2"; }; }

# The packaging tools: installed as root (as .ci/run does), else a skip (a failure under CI=true).
need=()
command -v dpkg-buildpackage >/dev/null || need+=(dpkg-dev)
command -v dh >/dev/null || need+=(debhelper)
command -v fakeroot >/dev/null || need+=(fakeroot)
command -v lintian >/dev/null || need+=(lintian)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" > /dev/null
  elif [ "${CI:-}" = true ]; then
    die "CI lacks ${need[*]} and is not root: cannot apt-get install"
  else
    echo "SKIPPED: Debian packages test: ${need[*]} not installed and not root" >&2
    exit 0
  fi
fi

# ---- 1. versions ---------------------------------------------------------------------------------
step "debian/changelog agrees with VERSION; the runtime package is named after the SONAME"
version="$(tr -d ' \n' < VERSION)"
soversion="${version%%.*}"
debversion="$(dpkg-parsechangelog -l debian/changelog -S Version)"
[ "$debversion" = "$version" ] ||
  die "debian/changelog says $debversion, VERSION says $version: add a debian/changelog entry (CHANGELOG.md, Release procedure)"
grep -qx "Package: libswiftvfio$soversion" debian/control || die "debian/control has no package libswiftvfio$soversion (SONAME libswiftvfio.so.$soversion)"
grep -qx "libswiftvfio.so.$soversion libswiftvfio$soversion #MINVER#" "debian/libswiftvfio$soversion.symbols" ||
  die "debian/libswiftvfio$soversion.symbols does not describe libswiftvfio.so.$soversion"
# One (symver) line per symbol version node, with the release that introduced it, as
# Scripts/abi-nodes.txt (the one list of the nodes) says.
Scripts/abi-symbols.sh --node-list | awk '{ print " (symver)" $1 " " $2 }' > "$tmp/symver-nodes"
grep '^ *(symver)' "debian/libswiftvfio$soversion.symbols" > "$tmp/symver-deb" || true
diff "$tmp/symver-nodes" "$tmp/symver-deb" > "$tmp/symver-diff" ||
  { cat "$tmp/symver-diff"; die "debian/libswiftvfio$soversion.symbols' (symver) lines are not Scripts/abi-nodes.txt's nodes (< nodes, > symbols file)"; }
# A release tag on the tested commit names the same version (CHANGELOG.md, Release procedure).
tags="$(git tag --points-at HEAD 'v[0-9]*' 2>/dev/null || true)"
for t in $tags; do [ "$t" = "v$version" ] || die "HEAD is tagged $t but VERSION says $version"; done
ok "debian/changelog $debversion = VERSION${tags:+ = tag $tags}; package libswiftvfio$soversion for libswiftvfio.so.$soversion; a (symver) line per node ($(wc -l < "$tmp/symver-nodes"))"

# ---- 2. dpkg-buildpackage on a copy ----------------------------------------------------------------
# The copy holds what git shows of the work tree (tracked files and untracked ones not ignored).
# Synced in place: a file is rewritten only when it differs (cp onto an existing file keeps its
# inode), files gone from the tree are removed, the build's own state (debian/.build, SwiftPM's
# scratch) is kept.
work="$root/.build-deb"
copy="$work/libswiftvfio-$version"
step "dpkg-buildpackage -us -uc -b -nc in a copy of the tree ($copy)"
mkdir -p "$copy"
git ls-files -co --exclude-standard | LC_ALL=C sort > "$tmp/files"
[ -s "$tmp/files" ] || die "git ls-files lists nothing"
changed=0
while IFS= read -r f; do
  [ -f "$f" ] || continue        # a tracked file deleted in the work tree
  if ! cmp -s "$f" "$copy/$f"; then
    mkdir -p "$copy/$(dirname "$f")"
    cp -p "$f" "$copy/$f"
    changed=$((changed + 1))
  fi
done < "$tmp/files"
(cd "$copy" && find . -path ./debian/.build -prune -o \( -type f -o -type l \) -print | sed 's|^\./||' | LC_ALL=C sort) > "$tmp/copied"
removed=0
while IFS= read -r f; do
  rm -f "$copy/$f"; removed=$((removed + 1))
done < <(LC_ALL=C comm -23 "$tmp/copied" "$tmp/files")
find "$copy" -depth -type d -empty -not -path "$copy/debian/.build*" -delete
echo "    $changed files copied, $removed removed (files gone from the tree, the previous package build's products)"
rm -f "$work"/*.deb "$work"/*.ddeb "$work"/*.changes "$work"/*.buildinfo
status_before="$(git status --porcelain --untracked-files=all)"
t0=$SECONDS
if ! (cd "$copy" && dpkg-buildpackage -us -uc -b -nc) > "$work/build.log" 2>&1; then
  tail -n 60 "$work/build.log"
  die "dpkg-buildpackage failed (whole log: $work/build.log)"
fi
build_s=$((SECONDS - t0))
changes="$(ls "$work"/libswiftvfio_"$version"_*.changes)"
arch="$(dpkg-architecture -q DEB_HOST_ARCH)"
multiarch="$(dpkg-architecture -q DEB_HOST_MULTIARCH)"
for p in "libswiftvfio$soversion" libswiftvfio-dev vfioctl; do
  [ -f "$work/${p}_${version}_$arch.deb" ] || die "no $p .deb (ls: $(ls "$work"))"
done
[ "$(git status --porcelain --untracked-files=all)" = "$status_before" ] || die "the build changed the clone: $(git status --short)"
ok "dpkg-buildpackage -us -uc -b: libswiftvfio$soversion, libswiftvfio-dev, vfioctl ${version} ($arch) and their -dbgsym in $build_s s; the clone unchanged"

# ---- 3. lintian -------------------------------------------------------------------------------------
step "lintian $(basename "$changes")"
t0=$SECONDS
# Exit 1 means tags at the error level (checked below from the text); anything higher, lintian failed.
lint_rc=0
lintian --display-info --pedantic --show-overrides --tag-display-limit 0 "$changes" > "$tmp/lintian" 2>&1 || lint_rc=$?
[ "$lint_rc" -le 1 ] || { cat "$tmp/lintian"; die "lintian did not run (exit $lint_rc)"; }
lint_s=$((SECONDS - t0))
grep -v '^N: ' "$tmp/lintian" | sed 's/^/    /' || true
grep -q '^E: ' "$tmp/lintian" && die "lintian reports errors"
# Every tag left, counted by severity, as the report's evidence.
for s in W I P O; do printf '    %s: %d\n' "$s" "$(grep -c "^$s: " "$tmp/lintian" || true)"; done
ok "lintian: no errors ($lint_s s)"

# ---- 4. contents -------------------------------------------------------------------------------------
step "package contents"
contents() { dpkg-deb -c "$work/${1}_${version}_$arch.deb" | awk '{ print $6 }' | sed 's|^\./|/|'; }
L="/usr/lib/$multiarch"
contents "libswiftvfio$soversion" > "$tmp/c-run"
contents libswiftvfio-dev > "$tmp/c-dev"
contents vfioctl > "$tmp/c-tool"
for f in "$L/libswiftvfio.so.$soversion" "$L/libswiftvfio.so.$version" /usr/share/doc/libswiftvfio$soversion/copyright; do
  has "$tmp/c-run" "$f"
done
! grep -E '^/usr/(bin|include|share/man)/|\.pc$|\.a$|preload' "$tmp/c-run" || die "the runtime package holds files a second SONAME's package would collide with"
for f in /usr/include/swiftvfio.h "$L/libswiftvfio.so" "$L/libswiftvfio.a" "$L/pkgconfig/swiftvfio.pc" "$L/pkgconfig/swiftvfio-static.pc" \
         /usr/share/man/man3/swiftvfio_open.3.gz /usr/share/doc/libswiftvfio-dev/examples/examples-c/vfio_rst.c \
         /usr/share/doc/libswiftvfio-dev/examples/Sources/CSwiftVFIOPreload/kvm/kvm_vfio.c; do
  has "$tmp/c-dev" "$f"
done
[ "$(grep -c '^/usr/share/man/man3/.*\.3\.gz$' "$tmp/c-dev")" = "$(ls man/man3 | wc -l)" ] || die "libswiftvfio-dev lacks man3 pages"
for f in /usr/bin/vfioctl "$L/libswiftvfio/libswiftvfio-preload.so" "$L/libswiftvfio/libswiftvfio.so.$soversion" \
         /usr/share/man/man1/vfioctl.1.gz /usr/share/man/man5/swiftvfio-topology.5.gz /usr/share/man/man7/swiftvfio.7.gz; do
  has "$tmp/c-tool" "$f"
done
ok "libswiftvfio$soversion: the library only; -dev: header, .so, .a, both .pc, $(ls man/man3 | wc -l) man3 pages, examples; vfioctl: the tool, the interposer (private dir), man 1/5/7"

dpkg-deb -f "$work/libswiftvfio${soversion}_${version}_$arch.deb" Depends > "$tmp/dep-run"
has "$tmp/dep-run" "libc6"; has "$tmp/dep-run" "libstdc++6"
dpkg-deb -f "$work/vfioctl_${version}_$arch.deb" Depends > "$tmp/dep-tool"
has "$tmp/dep-tool" "libswiftvfio$soversion (= $version)"
dpkg-deb --ctrl-tarfile "$work/libswiftvfio${soversion}_${version}_$arch.deb" | tar -xO ./symbols > "$tmp/symbols"
has "$tmp/symbols" "libswiftvfio.so.$soversion libswiftvfio$soversion #MINVER#"
# dpkg-gensymbols expanded the (symver) patterns into the exports: exactly the header's functions,
# each name@NODE with the release of its node (Scripts/abi-nodes.txt), so a package built against
# a function of a later node depends on that release.
sed -n "s/^ \([a-z_0-9]*\)@\(LIBSWIFTVFIO_[0-9.]*\) \([0-9.]*\)\$/\1@\2 \3/p" "$tmp/symbols" | grep -v '^LIBSWIFTVFIO_' | LC_ALL=C sort > "$tmp/sym-pkg"
Scripts/abi-symbols.sh --node-list > "$tmp/node-list"
Scripts/abi-symbols.sh --nodes | awk 'NR == FNR { rel[$1] = $2; next } { print $1 "@" $2 " " rel[$2] }' "$tmp/node-list" - | LC_ALL=C sort > "$tmp/sym-header"
diff "$tmp/sym-header" "$tmp/sym-pkg" > "$tmp/sym-diff" || { cat "$tmp/sym-diff"; die "the symbols file's functions are not the header's, each name@NODE RELEASE (< header and nodes, > package)"; }
dpkg-deb --ctrl-tarfile "$work/libswiftvfio${soversion}_${version}_$arch.deb" | tar -xO ./shlibs > "$tmp/shlibs"
has "$tmp/shlibs" "libswiftvfio $soversion libswiftvfio$soversion"
ok "Depends from shlibs (libc6, libstdc++6; no Swift package), vfioctl needs its exact library; shlibs, and a symbols file with the header's $(wc -l < "$tmp/sym-header") functions, each @NODE with its node's release"

# ---- 5. unpacked and used -------------------------------------------------------------------------------
sysroot="$tmp/root"
step "dpkg -x into $sysroot; examples-c built through the unpacked .pc and run"
for d in "$work"/*.deb; do dpkg -x "$d" "$sysroot"; done
for f in "$sysroot$L/libswiftvfio.so.$version" "$sysroot$L/libswiftvfio/libswiftvfio-preload.so" "$sysroot/usr/bin/vfioctl"; do
  readelf -dW "$f" > "$tmp/dyn"
  grep -q '(NEEDED)' "$tmp/dyn" || die "readelf -d $f: no NEEDED entries"
  ! grep -E '\((RUNPATH|RPATH)\)' "$tmp/dyn" || die "$f carries a RUNPATH/RPATH"
  ! grep -F -e "$root" -e '$ORIGIN' -e /opt/swift "$tmp/dyn" || die "$f names a build or toolchain path"
done
soname="$(readelf -dW "$sysroot$L/libswiftvfio.so.$version" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')"
[ "$soname" = "libswiftvfio.so.$soversion" ] || die "SONAME $soname"
ok "no RUNPATH/RPATH/\$ORIGIN/toolchain path in the packaged library, interposer and vfioctl; SONAME $soname"

# pkg-config sees only the unpacked .pc files (PKG_CONFIG_LIBDIR replaces the system's search
# path), with their prefix moved into the scratch root (--define-variable: the .pc files say /usr).
pc=(env PKG_CONFIG_LIBDIR="$sysroot$L/pkgconfig" pkg-config --define-variable=prefix="$sysroot/usr")
[ "$("${pc[@]}" --modversion swiftvfio)" = "$version" ] || die "pkg-config --modversion"
libs="$("${pc[@]}" --libs swiftvfio)"; libs="${libs% }"
[ "$libs" = "-L$sysroot$L -lswiftvfio" ] || die "pkg-config --libs swiftvfio: $libs"
ex="$tmp/examples"
cp -a "$sysroot/usr/share/doc/libswiftvfio-dev/examples" "$ex"
export LD_LIBRARY_PATH="$sysroot$L"
make -s -C "$ex/examples-c" PKG_CONFIG="${pc[*]}" all plugin cxx > "$tmp/make.log" 2>&1 || { cat "$tmp/make.log"; die "examples-c did not build from the packages"; }
for p in vfio_rst kvm_vfio mtty kvm_consumer; do
  ldd "$ex/examples-c/build/$p" > "$tmp/ldd"
  has "$tmp/ldd" "libswiftvfio.so.$soversion => $sysroot$L/libswiftvfio.so.$soversion"
  ! grep -e 'not found' -e /opt/swift -e "$root" "$tmp/ldd" || die "ldd $p"
done
make -s -C "$ex/examples-c" PKG_CONFIG="${pc[*]}" run run-cxx > "$tmp/run.log" 2>&1 || { cat "$tmp/run.log"; die "examples-c did not run against the packaged library"; }
has "$tmp/run.log" "passed"
ok "examples-c as packaged (vfio_rst, kvm_vfio, mtty, the plug-in, the C++ consumer) built with pkg-config on the unpacked .pc, found libswiftvfio.so.$soversion through LD_LIBRARY_PATH, ran"
unset LD_LIBRARY_PATH

# An unmodified client (not linked with libswiftvfio) under the packaged vfioctl: vfioctl finds the
# interposer in its private directory, and the interposer loads libswiftvfio.so.N beside itself
# (the symlink), with no LD_LIBRARY_PATH at all.
gcc -std=gnu11 -O1 -Wall -Wextra -Werror -I Tests/Preload -o "$tmp/vfio_rst_client" Tests/Preload/test_vfio_rst.c -ldl
"$sysroot/usr/bin/vfioctl" run "$tmp/vfio_rst_client" > "$tmp/client.out" 2>&1 || { cat "$tmp/client.out"; die "vfioctl run (packaged) failed"; }
has "$tmp/client.out" "passed, 0 failed"
ok "an unmodified client under the packaged vfioctl run: the interposer from $L/libswiftvfio/, the library beside it, no LD_LIBRARY_PATH"

printf '\ntest-deb: %d checks passed; dpkg-buildpackage %d s, lintian %d s\n' "$passed" "$build_s" "$lint_s"
