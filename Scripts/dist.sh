#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The release build of libswiftvfio, shipped like a C library (docs/VERSIONING.md).
#
#   Scripts/dist.sh                    build and stage everything into dist/
#   Scripts/dist.sh --install PREFIX   the same, then install into PREFIX (or $DESTDIR/PREFIX:
#                                      files go under DESTDIR, the .pc files say PREFIX)
#   Scripts/dist.sh --no-build ...     stage from the existing release build (no swift build)
#   Scripts/dist.sh --install PREFIX --libdir DIR
#                                      the libraries and pkgconfig/ go into DIR instead of
#                                      PREFIX/lib: DIR is absolute and under PREFIX
#                                      (/usr/lib/x86_64-linux-gnu, Debian's multiarch directory)
#                                      or relative to PREFIX (lib/x86_64-linux-gnu); the .pc
#                                      files' libdir follows. Default PREFIX/lib.
#   Scripts/dist.sh --no-strip ...     ship the files unstripped, no debug/ (a packager's own
#                                      strip step splits the debug info: debian/rules, dh_strip)
#   Scripts/dist.sh --uninstall PREFIX removes what --install put into PREFIX (or
#                                      $DESTDIR/PREFIX), by the manifest the install wrote, and
#                                      the directories that leaves empty (never PREFIX itself)
#
# dist/ is itself a prefix (its .pc files find it relative to themselves, so
# PKG_CONFIG_PATH=dist/lib/pkgconfig works without installing):
#   include/swiftvfio.h
#   lib/libswiftvfio.so.$VERSION          the C ABI, Swift runtime linked in (-static-stdlib): it
#   lib/libswiftvfio.so.0 -> ...          needs only libc, libm, libstdc++, libgcc_s and the
#   lib/libswiftvfio.so -> .so.0          loader; SONAME libswiftvfio.so.0; exports exactly the
#                                         header's functions, each @@LIBSWIFTVFIO_0
#   lib/libswiftvfio.a                    the same objects; link line in swiftvfio-static.pc
#   lib/libswiftvfio-preload.so           the LD_PRELOAD interposer (C only, libc only)
#   lib/pkgconfig/swiftvfio.pc            -I.../include, -L.../lib -lswiftvfio
#   lib/pkgconfig/swiftvfio-static.pc     libswiftvfio.a + swiftrt.o + the static Swift runtime
#   bin/vfioctl                           the command-line tool (Swift runtime linked in); finds
#                                         the interposer in ../lib
#   share/man/man{1,3,5,7}/               the manual pages (man/, Scripts/gen-man.sh)
#   share/libswiftvfio/manifest           (installed only) what --install installed, for
#                                         --uninstall
# and, not installed: debug/*.debug (the stripped debug info, found through .gnu_debuglink).
#
# No RUNPATH: SwiftPM links every product with -rpath $ORIGIN (so a debug build finds its
# neighbours); the release builds here pass --disable-local-rpath, so nothing shipped carries a
# RUNPATH or RPATH (a distribution's library must be found by the loader's own search, and an
# $ORIGIN there would let a library planted beside it be loaded first). Nothing needs one: the
# Swift runtime is linked in (-static-stdlib, below), vfioctl links the model statically, and the
# preload finds libswiftvfio by its own directory (dlopen of a path). Scripts/abi-check.sh and
# Scripts/test-tools.sh check it with readelf -d.
#
# Environment: SWIFTVFIO_DIST_SCRATCH (SwiftPM scratch path, default .build-dist), DIST (output
# directory, default dist), CC (compiles the preload, default clang, else cc), SWIFT (default swift, else
# /opt/swift/usr/bin/swift).
#
# Why the flags are here and not in Package.swift: -static-stdlib in the package would give
# `swift test` and every debug product a second, private runtime (SwiftPM has no per-product static-stdlib switch).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

# The release version. SOVERSION changes only with an incompatible ABI change (docs/VERSIONING.md);
# it names the SONAME. A bump also restarts the version nodes (Scripts/abi-nodes.txt, which
# Scripts/abi-symbols.sh and Scripts/abi-check.sh read) and regenerates the baseline.
# The version is kept in VERSION (Scripts/gen-header.sh puts it in the header and in
# swiftvfio_version()); the SONAME's number is its MAJOR.
VERSION="$(tr -d ' \n' < VERSION)"
[[ "$VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "$0: VERSION '$VERSION' is not MAJOR.MINOR.PATCH" >&2; exit 1; }
SOVERSION="${VERSION%%.*}"

build=1
strip=1
prefix=""
libdir=""
uninstall=""
while [ $# -gt 0 ]; do
  case "$1" in
    --install) [ $# -ge 2 ] || { echo "$0: --install needs a PREFIX" >&2; exit 2; }; prefix="$2"; shift 2 ;;
    --libdir) [ $# -ge 2 ] || { echo "$0: --libdir needs a DIR" >&2; exit 2; }; libdir="$2"; shift 2 ;;
    --uninstall) [ $# -ge 2 ] || { echo "$0: --uninstall needs a PREFIX" >&2; exit 2; }; uninstall="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    --no-strip) strip=0; shift ;;
    *) echo "usage: $0 [--no-build] [--no-strip] [--install PREFIX [--libdir DIR]] | --uninstall PREFIX" >&2; exit 2 ;;
  esac
done
manifest_rel=share/libswiftvfio/manifest
if [ -n "$uninstall" ]; then
  # Removes the manifest's files (never anything it does not name), then the directories that
  # are left empty, deepest first, up to but not including PREFIX.
  dest="${DESTDIR:-}$uninstall"
  [ -f "$dest/$manifest_rel" ] || { echo "$0: $dest/$manifest_rel not found: nothing installed there by $0" >&2; exit 1; }
  mapfile -t files < "$dest/$manifest_rel"
  files+=("$manifest_rel")
  n=0
  for f in "${files[@]}"; do
    case "$f" in ""|/*|*..*) echo "$0: bad manifest line '$f'" >&2; exit 1 ;; esac
    if [ -e "$dest/$f" ] || [ -L "$dest/$f" ]; then rm -f "$dest/$f"; n=$((n + 1)); fi
  done
  # Every directory those paths run through, deepest first; rmdir leaves non-empty ones alone.
  printf '%s\n' "${files[@]}" |
    awk -F/ '{ p = ""; for (i = 1; i < NF; i++) { p = p (i > 1 ? "/" : "") $i; print p } }' |
    sort -u | awk -F/ '{ print NF, $0 }' | sort -k1,1nr | cut -d' ' -f2- |
    while IFS= read -r d; do rmdir "$dest/$d" 2>/dev/null || true; done
  echo "uninstalled $n files from $dest"
  exit 0
fi
if [ -n "$prefix" ]; then
  case "$prefix" in /*) ;; *) echo "$0: PREFIX must be an absolute path (it is written into the .pc files)" >&2; exit 2 ;; esac
  prefix="${prefix%/}"
  [ -n "$prefix" ] || prefix=/
fi
# libdir_rel: the library directory relative to PREFIX (lib by default). The manifest holds paths
# relative to PREFIX, so a libdir outside PREFIX is refused rather than half supported.
libdir_rel=lib
if [ -n "$libdir" ]; then
  [ -n "$prefix" ] || { echo "$0: --libdir goes with --install PREFIX" >&2; exit 2; }
  case "$libdir" in
    "${prefix%/}"/*) libdir_rel="${libdir#"${prefix%/}"/}" ;;
    /*) echo "$0: --libdir $libdir is not under PREFIX $prefix" >&2; exit 2 ;;
    *) libdir_rel="$libdir" ;;
  esac
  libdir_rel="${libdir_rel%/}"
  case "/$libdir_rel/" in
    //|*/../*|*/./*|*//*) echo "$0: --libdir $libdir: not a directory below PREFIX" >&2; exit 2 ;;
  esac
fi

scratch="${SWIFTVFIO_DIST_SCRATCH:-.build-dist}"
case "$scratch" in /*) ;; *) scratch="$root/$scratch" ;; esac
dist="${DIST:-dist}"
case "$dist" in /*) ;; *) dist="$root/$dist" ;; esac
# The preload's C compiler: clang by default, as SwiftPM compiles it (the configuration its tests
# run); gcc works too, with a warning about startup.c's clang-only attributes.
cc="${CC:-}"
[ -n "$cc" ] || { command -v clang >/dev/null && cc=clang || cc=cc; }
swift="${SWIFT:-swift}"
command -v "$swift" >/dev/null || swift=/opt/swift/usr/bin/swift
command -v "$swift" >/dev/null || { echo "$0: swift is not installed" >&2; exit 1; }
swift_bin="$(dirname "$(readlink -f "$(command -v "$swift")")")"
swift_static="$(dirname "$swift_bin")/lib/swift_static/linux"
swiftrt="$swift_static/$(uname -m)/swiftrt.o"

obj="$scratch/dist-obj"          # intermediates: version scripts, the preload object
rel="$scratch/release"           # SwiftPM's release output (a symlink to the triple's directory)
mkdir -p "$obj"

step() { printf '\n--> %s\n' "$*"; }
started=$SECONDS

# ---- 1. libswiftvfio.so.0 ----------------------------------------------------------------------
# The version script comes from the header (what is exported) and Scripts/abi-nodes.txt (in which
# node), through Scripts/abi-symbols.sh, which fails on a header function in no node. SwiftPM
# does not know the script is an input of the link, so a changed script would
# not relink; the .so is removed whenever the script differs from the one it was linked with.
step "version script from include/swiftvfio.h and Scripts/abi-nodes.txt"
Scripts/abi-symbols.sh --version-script > "$obj/libswiftvfio.map.new"
if ! cmp -s "$obj/libswiftvfio.map.new" "$obj/libswiftvfio.map" 2>/dev/null; then
  mv "$obj/libswiftvfio.map.new" "$obj/libswiftvfio.map"
  rm -f "$rel/libswiftvfio.so"
else
  rm -f "$obj/libswiftvfio.map.new"
fi
echo "    $(grep -c '^    [a-z_0-9]*;$' "$obj/libswiftvfio.map") functions in $(grep -c '^LIBSWIFTVFIO_[0-9.]* {$' "$obj/libswiftvfio.map") version nodes"

# -use-ld=lld: gold (swiftc's default linker here) keeps every symbol that a GOT entry refers to
# in .dynsym, as a LOCAL entry, even after the version script hid it: 41 Swift metadata accessors
# and type descriptors showed up in `nm -D`. They were not bindable, but they were noise in the
# export list. lld turns those GOT entries into relative relocations and keeps .dynsym to the
# exported functions.
# -z now (with lld's default relro: full RELRO): every import bound at load, the GOT then read-only,
# as distributions build their libraries (lintian's hardening-no-bindnow); the imports are libc's,
# libm's and libstdc++'s, all loaded anyway.
# lean: the library's modules use neither Swift concurrency nor regular expressions, so the shipped
# build does not import (and libswiftvfio.so does not link) _Concurrency and _StringProcessing,
# which every Swift module imports implicitly: those bring libswift_Concurrency, libdispatch,
# libBlocksRuntime, libswift_StringProcessing and libswift_RegexParser into every process that
# loads the model, a fifth of an interposed QEMU's start-up in symbol binding (docs/BENCHMARKS.md).
# The flags are given here, not in Package.swift: unsafeFlags in the root manifest would make the
# package unusable as a versioned SwiftPM dependency. Scripts/bench.sh builds with the same flags.
lean=(-Xswiftc -Xfrontend -Xswiftc -disable-implicit-concurrency-module-import
  -Xswiftc -Xfrontend -Xswiftc -disable-implicit-string-processing-module-import)
# The flags both products share. Their swiftc flags are the same, so vfioctl's build recompiles
# nothing: it only links (the Swift runtime linked in, none of the library's linker flags).
common_flags=(-c release --scratch-path "$scratch" --disable-local-rpath
  -Xswiftc -static-stdlib -Xswiftc -use-ld=lld -Xlinker -z -Xlinker now "${lean[@]}")
swift_flags=(--product swiftvfio "${common_flags[@]}"
  -Xlinker "-soname=libswiftvfio.so.$SOVERSION"
  -Xlinker "--version-script=$obj/libswiftvfio.map")
tool_flags=(--product vfioctl "${common_flags[@]}")
# swift_build WHAT LOG FLAGS...: one release build, its log kept in LOG and shown whole on failure.
swift_build() {
  local what="$1" log="$2"
  shift 2
  step "swift build $*"
  local t0=$SECONDS
  if ! "$swift" build "$@" > "$log" 2>&1; then
    cat "$log" >&2
    echo "$0: swift build of $what failed" >&2
    exit 1
  fi
  grep -v '^\[' "$log" || true   # without the per-file progress lines
  echo "    ($((SECONDS - t0)) s)"
}
if [ $build = 1 ]; then
  swift_build libswiftvfio "$obj/build.log" "${swift_flags[@]}"
  swift_build vfioctl "$obj/build-vfioctl.log" "${tool_flags[@]}"
fi
[ -f "$rel/vfioctl" ] || { echo "$0: no $rel/vfioctl (run without --no-build)" >&2; exit 1; }
[ -f "$rel/libswiftvfio.so" ] || { echo "$0: no $rel/libswiftvfio.so (run without --no-build)" >&2; exit 1; }
objects="$rel/swiftvfio.product/Objects.LinkFileList"
[ -f "$objects" ] || objects="$scratch/$(uname -m)-unknown-linux-gnu/release/swiftvfio.product/Objects.LinkFileList"
[ -f "$objects" ] || { echo "$0: the product's object list is missing ($objects)" >&2; exit 1; }

step "staging $dist"
rm -rf "$dist"
mkdir -p "$dist/include" "$dist/lib/pkgconfig" "$dist/debug" "$dist/bin" "$dist/share/man"
cp include/swiftvfio.h "$dist/include/"
for section in man/man*; do
  mkdir -p "$dist/share/man/$(basename "$section")"
  cp "$section"/* "$dist/share/man/$(basename "$section")/"
done
so="libswiftvfio.so.$VERSION"

# Ship stripped, keep the debug info beside: the .debug file has everything (DWARF and the full
# symbol table) and the shipped .so points at it with .gnu_debuglink (gdb looks in the same
# directory, in .debug/ under it, and under /usr/lib/debug). --strip-unneeded drops .symtab too:
# 12 MB -> 7 MB; the exported names stay in .dynsym, and the Swift runtime needs only its
# swift5_* metadata sections, which strip keeps.
split_debug() { # file
  local f="$1" dbg
  [ $strip = 1 ] || return 0
  dbg="$dist/debug/$(basename "$f").debug"
  objcopy --only-keep-debug "$f" "$dbg"
  chmod 0644 "$dbg"
  objcopy --strip-unneeded --remove-section=.comment "$f"
  (cd "$dist/debug" && objcopy --add-gnu-debuglink="$(basename "$dbg")" "$f")
}
cp "$rel/libswiftvfio.so" "$dist/lib/$so"
split_debug "$dist/lib/$so"
ln -s "$so" "$dist/lib/libswiftvfio.so.$SOVERSION"
ln -s "libswiftvfio.so.$SOVERSION" "$dist/lib/libswiftvfio.so"

# ---- 2. libswiftvfio.a -------------------------------------------------------------------------
# The objects the .so was linked from (same compilation, PIC, so fine in any executable), as the
# toolchain would archive them. What the archive cannot carry is written in swiftvfio-static.pc:
# the toolchain's swiftrt.o (its constructor registers the image's Swift metadata sections with
# the runtime: without it the first protocol cast or type lookup fails; here test programs
# crashed with SIGSEGV at start) and the static runtime libraries the objects autolink.
step "libswiftvfio.a"
ar rcsD "$dist/lib/libswiftvfio.a" $(cat "$objects")
# Without DWARF, as the .so ships (the .so's .debug file describes the same code): 7.4 MB -> 2.5 MB.
[ $strip = 0 ] || strip --strip-debug "$dist/lib/libswiftvfio.a"
swift_libs="$("$swift_bin/swift-autolink-extract" $(cat "$objects") -o - | grep '^-lswift' | tr '\n' ' ')"
# The autolinked order is not a dependency order (-lswiftCore comes first), and archives are
# searched once each in order: the Swift archives go in one --start-group/--end-group. Then the
# runtime's own needs, as the toolchain's static-stdlib-args.lnk lists them (Concurrency brings
# libdispatch and BlocksRuntime; the runtime brings libstdc++).
static_libs="-L\${swift_static} -Wl,--start-group ${swift_libs}-Wl,--end-group -ldispatch -lBlocksRuntime -lstdc++ -lm -ldl -lpthread -lutil"
echo "    $(wc -l < "$objects") objects; Swift libraries: ${swift_libs}"

# ---- 3. libswiftvfio-preload.so ----------------------------------------------------------------
# Compiled and linked here with the C compiler, not through SwiftPM: SwiftPM links even a C-only
# product with swiftc (swiftrt.o and -lswiftCore), and the release flags above (-static-stdlib,
# the library's SONAME and version script) would apply to it too.
#
# Its exports are the functions its files mark EXPORT (visibility("default") under
# -fvisibility=hidden): the interposed libc functions and swiftvfio_preload_state. They are
# deliberately NOT versioned: the version script is anonymous (it only hides everything else).
# A program's reference is versioned (open@GLIBC_2.2.5, stat@GLIBC_2.33, ...) and the dynamic
# linker accepts an unversioned definition for it in the preload, but rejects a definition with
# any other version (say open@@LIBSWIFTVFIO_PRELOAD_0), which would silently stop interposing.
# The preload finds libswiftvfio from its own directory (dlopen of "<dir>/libswiftvfio.so", the
# name Sources/CSwiftVFIOPreload/library.c uses; docs/PRELOAD.md), so it is installed beside the
# library and its libswiftvfio.so symlink.
preload_dir=Sources/CSwiftVFIOPreload
preload_built=0
if compgen -G "$preload_dir/*.c" >/dev/null; then
  step "libswiftvfio-preload.so ($cc)"
  # Every source of the target, the kvm-vfio device's (kvm/) included, as Package.swift builds
  # them: the header's directory and SWIFTVFIO_PRELOAD. The kvm sources' exports are
  # kvm_get_kvm_safe and kvm_put_kvm, the KVM entry points libswiftvfio looks up.
  preload_objs=()
  for src in "$preload_dir"/*.c "$preload_dir"/kvm/*.c; do
    o="$obj/preload-$(basename "$src" .c).o"
    "$cc" -std=gnu11 -O2 -g -fPIC -fno-omit-frame-pointer -fvisibility=hidden -Wall -Wextra \
      -I "$preload_dir/include" -I include -DSWIFTVFIO_PRELOAD -c "$src" -o "$o"
    preload_objs+=("$o")
  done
  for o in "${preload_objs[@]}"; do readelf -sW "$o"; done |
    awk '($5 == "GLOBAL" || $5 == "WEAK") && $6 == "DEFAULT" && $7 != "UND" && $4 == "FUNC" { print $8 }' |
    sort -u > "$obj/preload.exports"
  [ -s "$obj/preload.exports" ] || { echo "$0: the preload exports nothing?" >&2; exit 1; }
  {
    echo "/* libswiftvfio-preload.so: GENERATED by Scripts/dist.sh from the EXPORT functions of"
    echo " * $preload_dir/*.c and kvm/*.c. Anonymous (unversioned) on purpose: see Scripts/dist.sh. */"
    echo "{"
    echo "  global:"
    sed 's/.*/    &;/' "$obj/preload.exports"
    echo "  local:"
    echo "    *;"
    echo "};"
  } > "$obj/libswiftvfio-preload.map"
  # lld when there is one, for the reason the library uses it: GNU ld keeps the TLS variable
  # the preload reads with initial-exec (in_model) in .dynsym as a LOCAL entry.
  use_lld=()
  command -v ld.lld >/dev/null && use_lld=(-fuse-ld=lld)
  "$cc" -shared "${use_lld[@]}" -o "$dist/lib/libswiftvfio-preload.so" "${preload_objs[@]}" \
    -Wl,-soname,libswiftvfio-preload.so -Wl,--version-script="$obj/libswiftvfio-preload.map" \
    -Wl,--no-undefined -Wl,-z,relro -Wl,-z,now -Wl,--build-id -Wl,--as-needed -ldl -pthread
  split_debug "$dist/lib/libswiftvfio-preload.so"
  echo "    $(wc -l < "$obj/preload.exports") exported functions (unversioned)"
  preload_built=1
else
  step "libswiftvfio-preload.so: SKIPPED, $preload_dir has no sources"
fi

# ---- vfioctl -------------------------------------------------------------------------------------
cp "$rel/vfioctl" "$dist/bin/vfioctl"
split_debug "$dist/bin/vfioctl"

# ---- 4. pkg-config -----------------------------------------------------------------------------
# In dist/ the prefix is found from the .pc file's own place; --install writes the real prefix.
step "pkg-config files"
cat > "$dist/lib/pkgconfig/swiftvfio.pc" <<EOF
prefix=\${pcfiledir}/../..
exec_prefix=\${prefix}
libdir=\${exec_prefix}/lib
includedir=\${prefix}/include

Name: swiftvfio
Description: User-space model of the Linux v6.3 VFIO group layer (C ABI, Swift runtime included)
Version: $VERSION
Cflags: -I\${includedir}
# The shared library carries its Swift runtime and records its own needs (libstdc++, libm,
# libgcc_s, libc), so nothing is private here. To link statically use swiftvfio-static, not
# --static: -lswiftvfio alone cannot pull in the Swift runtime and swiftrt.o.
Libs: -L\${libdir} -lswiftvfio
EOF
cat > "$dist/lib/pkgconfig/swiftvfio-static.pc" <<EOF
prefix=\${pcfiledir}/../..
exec_prefix=\${prefix}
libdir=\${exec_prefix}/lib
includedir=\${prefix}/include
# The toolchain the archive was built with ($("$swift" --version 2>/dev/null | head -n 1)).
# Swift has no stable ABI on Linux: the objects link only against this toolchain's runtime, which
# is linked into the program (needed at link time, not at run time).
swift_static=$swift_static
swiftrt=$swiftrt

Name: swiftvfio-static
Description: libswiftvfio as a static archive, with the Swift runtime linked in statically
Version: $VERSION
Cflags: -I\${includedir}
# swiftrt.o is an object, not a library: it must be on the link line once per executable (it
# registers the image's Swift metadata with the runtime; without it the program crashes or its
# protocol casts fail). Archive first, then the runtime that resolves it.
Libs: \${libdir}/libswiftvfio.a \${swiftrt} $static_libs
EOF

# ---- 5. install -------------------------------------------------------------------------------
if [ -n "$prefix" ]; then
  dest="${DESTDIR:-}$prefix"
  step "install into $dest (libraries in ${prefix%/}/$libdir_rel)"
  # Everything staged except debug/, as it is (modes, symlinks); lib/ goes to the libdir; the .pc
  # files with the prefix and the libdir. The manifest lists the installed paths (relative to PREFIX).
  install -d "$dest"
  (cd "$dist" && find include lib bin share \( -type f -o -type l \) | sort) > "$obj/staged"
  [ $preload_built = 1 ] || sed -i '/libswiftvfio-preload.so/d' "$obj/staged"
  installed_as() { case "$1" in lib/*) echo "$libdir_rel/${1#lib/}" ;; *) echo "$1" ;; esac; }
  : > "$obj/manifest"
  while IFS= read -r f; do
    to="$(installed_as "$f")"
    echo "$to" >> "$obj/manifest"
    install -d "$dest/$(dirname "$to")"
    if [ -L "$dist/$f" ]; then
      ln -sfn "$(readlink "$dist/$f")" "$dest/$to"
    else
      case "$f" in bin/*|lib/*.so*) mode=0755 ;; *) mode=0644 ;; esac
      install -m "$mode" "$dist/$f" "$dest/$to"
    fi
  done < "$obj/staged"
  # libdir as pkg-config users expect it: through ${exec_prefix}, so a relocated prefix follows.
  for pc in swiftvfio swiftvfio-static; do
    sed -e "s|^prefix=.*|prefix=$prefix|" -e "s|^libdir=.*|libdir=\${exec_prefix}/$libdir_rel|" \
      "$dist/lib/pkgconfig/$pc.pc" > "$dest/$libdir_rel/pkgconfig/$pc.pc"
    chmod 0644 "$dest/$libdir_rel/pkgconfig/$pc.pc"
  done
  install -d "$dest/$(dirname "$manifest_rel")"
  install -m 0644 "$obj/manifest" "$dest/$manifest_rel"
  (cd "$dest" && ls -l include/swiftvfio.h "$libdir_rel"/libswiftvfio* "$libdir_rel"/pkgconfig/swiftvfio*.pc bin/vfioctl) | sed 's/^/    /'
  echo "    $(grep -c '^share/man/' "$obj/manifest") manual pages under $dest/share/man"
  # The loader finds libswiftvfio.so.0 in a directory of /etc/ld.so.conf only through ld.so.cache.
  [ -z "${DESTDIR:-}" ] && grep -rqsx "${prefix%/}/$libdir_rel" /etc/ld.so.conf /etc/ld.so.conf.d/ &&
    echo "    ${prefix%/}/$libdir_rel is in ld.so.conf: run ldconfig (as root) so programs find libswiftvfio.so.0"
fi

# ---- sizes -------------------------------------------------------------------------------------
step "shipped files"
(cd "$dist" && find include lib bin -type f | sort | while read -r f; do
  printf '    %-36s %10s bytes  %s\n' "$f" "$(stat -c %s "$f")" "$(numfmt --to=iec --suffix=B "$(stat -c %s "$f")")"
done)
(cd "$dist" && find lib -type l | sort | while read -r f; do printf '    %-36s -> %s\n' "$f" "$(readlink "$f")"; done)
printf '\ndist: done in %d s (%s)%s\n' "$((SECONDS - started))" "$dist" "${prefix:+, installed into ${DESTDIR:-}$prefix}"
