# SPDX-License-Identifier: Apache-2.0
# libswiftvfio: the conventional front door for C users. Every target wraps a script of
# Scripts/ (the scripts are the one place the work is described; this file only names it).
#
#   make                          debug build: libswiftvfio.so, libswiftvfio-preload.so, vfioctl
#                                 (.build/debug), and the examples' plug-in
#   make dist                     the release files staged in dist/ (Scripts/dist.sh)
#   make install [PREFIX=/usr/local] [libdir=$(PREFIX)/lib] [DESTDIR=]
#                                 release build, installed: include/, libdir (libswiftvfio.so.0,
#                                 libswiftvfio.a, libswiftvfio-preload.so, pkgconfig/), bin/vfioctl,
#                                 share/man/ (Scripts/dist.sh --install). libdir as in GNU make
#                                 conventions: an absolute directory under PREFIX, e.g. Debian's
#                                 multiarch libdir=/usr/lib/x86_64-linux-gnu; the .pc files follow.
#   make uninstall [PREFIX=...] [DESTDIR=]
#                                 removes exactly what install put there (its manifest)
#   make check                    every test: the README's test command (Scripts/test.sh)
#   make clean                    removes the build directories and dist/
#
# Needs the Swift toolchain (swift on PATH, or /opt/swift/usr/bin/swift).

PREFIX ?= /usr/local
libdir ?= $(PREFIX)/lib
DESTDIR ?=
SWIFT ?= $(shell command -v swift 2>/dev/null || echo /opt/swift/usr/bin/swift)
export SWIFT

all:
	PATH="$(dir $(SWIFT)):$$PATH" $(SWIFT) build
	$(MAKE) -C examples-c all plugin

dist:
	PATH="$(dir $(SWIFT)):$$PATH" bash Scripts/dist.sh

install:
	PATH="$(dir $(SWIFT)):$$PATH" DESTDIR="$(DESTDIR)" bash Scripts/dist.sh --install "$(PREFIX)" --libdir "$(libdir)"

uninstall:
	DESTDIR="$(DESTDIR)" bash Scripts/dist.sh --uninstall "$(PREFIX)"

check:
	PATH="$(dir $(SWIFT)):$$PATH" bash Scripts/test.sh

clean:
	rm -rf .build .build-tsan .build-asan .build-dist dist
	$(MAKE) -C examples-c clean

.PHONY: all dist install uninstall check clean
