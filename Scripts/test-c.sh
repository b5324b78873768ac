#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The C ABI tests: builds libswiftvfio.so, then
#   1. checks include/swiftvfio.h against the Swift sources (Scripts/gen-header.sh --check) and
#      that every function it declares is exported and used by a C test or example;
#   2. compiles the header alone and with the kernel's prototypes verbatim, with gcc and clang,
#      as -std=c11 and -std=c++17, -pedantic -Werror (and links and runs the results);
#   3. builds and runs every Tests/CABI/test_*.c with gcc and with clang against the built .so
#      (Tests/Makefile, `make -C Tests cabi`: each prints "N passed, M failed", exits non-zero
#      on failure);
#   4. builds examples-c with its Makefile (through pkg-config) with gcc and clang and runs them.
# Exits non-zero on the first failure.
#
#   Scripts/test-c.sh                     all of the above (debug build)
#   Scripts/test-c.sh --sanitize=address  steps 3 and 4 with clang only, library and programs
#   Scripts/test-c.sh --sanitize=thread   built with ASan (leak checking on) or TSan
#
# Environment: SWIFTVFIO_SCRATCH, the SwiftPM scratch path (default .build; .build-asan and
# .build-tsan, the ones Scripts/test.sh uses for `swift test`, with --sanitize).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

sanitize=""
case "${1:-}" in
  --sanitize=address) sanitize=address ;;
  --sanitize=thread) sanitize=thread ;;
  "") ;;
  *) echo "usage: $0 [--sanitize=address|--sanitize=thread]" >&2; exit 2 ;;
esac
case "$sanitize" in
  address) default_scratch=.build-asan ;;
  thread) default_scratch=.build-tsan ;;
  *) default_scratch=.build ;;
esac
scratch="${SWIFTVFIO_SCRATCH:-$default_scratch}"
case "$scratch" in /*) ;; *) scratch="$root/$scratch" ;; esac
libdir="$scratch/debug"
out="$scratch/cabi"
export SWIFT_BACKTRACE=enable=no
unset SWIFTVFIO_TOPOLOGY SWIFTVFIO_LOG

# Compilers and the flags a sanitized library needs in its programs (clang, the same -fsanitize,
# lld; the toolchain's TSan runtime references libdispatch and the blocks runtime).
compilers=(gcc clang)
san_cflags=()
san_libs=()
if [ -n "$sanitize" ]; then
  compilers=(clang)
  swiftlib="$(dirname "$(dirname "$(command -v swift)")")/lib/swift/linux"
  san_cflags=(-fsanitize="$sanitize" -fno-omit-frame-pointer)
  san_libs=(-fuse-ld=lld)
  [ "$sanitize" = thread ] && san_libs+=(-L "$swiftlib" -Wl,-rpath,"$swiftlib" -ldispatch -lBlocksRuntime)
  [ "$sanitize" = address ] && export ASAN_OPTIONS="detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
fi

step() { printf '\n--> %s\n' "$*"; }

step "swift build --product swiftvfio${sanitize:+ --sanitize=$sanitize}"
swift build --scratch-path "$scratch" --product swiftvfio ${sanitize:+--sanitize=$sanitize}
[ -f "$libdir/libswiftvfio.so" ] || { echo "no $libdir/libswiftvfio.so" >&2; exit 1; }

if [ -z "$sanitize" ]; then
  step "include/swiftvfio.h is generated from the current sources"
  SWIFTVFIO_SCRATCH="$scratch" SWIFTVFIO_NO_BUILD=1 Scripts/gen-header.sh --check

  step "every function of the header is exported and exercised by a C test or example"
  declared="$(awk '/^\/\* ==== / { on = 1 } on && /^[a-z].*\(.*\);$/ { sub(/\(.*/, ""); sub(/.*[ *]/, ""); print }' include/swiftvfio.h | sort -u)"
  exported="$(nm -D --defined-only "$libdir/libswiftvfio.so" | awk '{ print $3 }' | sort -u)"
  missing=0
  for f in $declared; do
    if ! grep -qx "$f" <<<"$exported"; then echo "    $f is declared but not exported" >&2; missing=1; fi
    if ! grep -qw "$f" Tests/*/*.c examples-c/*.c; then echo "    $f is not used by any C test or example" >&2; missing=1; fi
  done
  [ $missing = 0 ] || exit 1
  echo "    $(wc -w <<<"$declared") functions: all exported, all exercised"

  step "header compile matrix"
  mkdir -p "$out/header"
  matrix=0
  for cc in gcc clang; do
    case $cc in gcc) cxx=g++ ;; clang) cxx=clang++ ;; esac
    for src in include_only kernel_prototypes; do
      for lang in c11 c++17; do
        if [ $lang = c11 ]; then compiler=$cc; flags=(-x c -std=c11); else compiler=$cxx; flags=(-x c++ -std=c++17); fi
        exe="$out/header/$src-$cc-$lang"
        "$compiler" "${flags[@]}" -pedantic -Werror -Wall -Wextra -I include "Tests/CABI/header/$src.c" \
          -L "$libdir" -Wl,-rpath,"$libdir" -lswiftvfio -o "$exe"
        "$exe"
        printf '    %-20s %-6s %-6s ok\n' "$src.c" "$cc" "$lang"
        matrix=$((matrix + 1))
      done
    done
  done
fi

step "C tests (Tests/CABI, make -C Tests cabi), with ${compilers[*]}${sanitize:+, -fsanitize=$sanitize}"
make -s --no-print-directory -C Tests cabi LIBDIR="$libdir" ${sanitize:+SANITIZE=$sanitize} | tee "$scratch/cabi-summary.txt"
summary="$(tail -n 1 "$scratch/cabi-summary.txt")"

step "examples-c (make, through pkg-config), with ${compilers[*]}"
mkdir -p "$out/pkgconfig"
cat > "$out/pkgconfig/swiftvfio.pc" <<EOF
prefix=$root
includedir=\${prefix}/include
libdir=$libdir

Name: swiftvfio
Description: A user-space model of the Linux v6.3 VFIO group layer (this source tree's build)
Version: $(tr -d ' \n' < "$root/VERSION")
Cflags: -I\${includedir}
Libs: -L\${libdir} -Wl,-rpath,\${libdir} -lswiftvfio
EOF
for cc in "${compilers[@]}"; do
  make_vars=(CC="$cc" BUILD="$out/examples-$cc")
  if [ -n "$sanitize" ]; then
    make_vars+=(CFLAGS="-std=c11 -g -O1 -Wall -Wextra -Werror ${san_cflags[*]}"
                SWIFTVFIO_LIBS="-L$libdir -Wl,-rpath,$libdir -lswiftvfio ${san_libs[*]}")
  fi
  PKG_CONFIG_PATH="$out/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}" \
    make -s -C examples-c "${make_vars[@]}" all
  for ex in vfio_rst kvm_vfio mtty; do
    log="$out/examples-$cc/$ex.log"
    if ! timeout 120 "$out/examples-$cc/$ex" >"$log" 2>&1; then
      cat "$log"
      echo "FAILED: examples-c/$ex ($cc)" >&2
      exit 1
    fi
    printf '    %-10s %-6s %s\n' "$ex" "$cc" "$(tail -n 1 "$log")"
  done
done

printf '\nC ABI%s: %d header builds, %s; 3 examples x %d compiler(s): all passed\n' \
  "${sanitize:+ (-fsanitize=$sanitize)}" "${matrix:-0}" "${summary#*: }" "${#compilers[@]}"
