#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs every test of libswiftvfio: the Swift suites (debug), then under ThreadSanitizer and
# AddressSanitizer, then the C ABI tests and examples. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export SWIFT_BACKTRACE=enable=no   # the crash handler trips sanitizers (Swift's backtracer installs its own signal handlers)

step() { printf '\n==> %s\n' "$*"; }

step "docs and licence lines: every docs/*.md#id cited resolves, nothing cites outside the repository, every source file has its SPDX line"
Scripts/check-doc-links.sh
Scripts/check-spdx.sh

step "swift test (debug)"
swift test

step "swift test --sanitize=thread"
swift test --sanitize=thread --scratch-path .build-tsan

step "swift test --disable-xctest --sanitize=address"
swift test --disable-xctest --sanitize=address --scratch-path .build-asan

step "C ABI: header checks, C tests (gcc, clang), examples"
Scripts/test-c.sh

step "C ABI tests against the ASan library (clang -fsanitize=address)"
Scripts/test-c.sh --sanitize=address

step "C ABI tests against the TSan library (clang -fsanitize=thread)"
Scripts/test-c.sh --sanitize=thread

step "release build, install into a prefix, ABI check (exports == header, pkg-config, no toolchain at run time)"
Scripts/abi-check.sh

step "LD_PRELOAD interposer: unmodified C clients (gcc) against the model"
Scripts/test-preload.sh

step "QEMU 7.2 end to end: vfio-pci on the model (sysfs tree and JSON), QEMU's own errors"
Scripts/test-qemu.sh

step "A Linux 6.12 guest's virtio_net binds the model's virtio-net personality through QEMU's vfio-pci"
Scripts/test-guest.sh

step "DPDK 22.11 dpdk-testpmd probes the model's personalities under the interposer (type1 and no-IOMMU)"
Scripts/test-dpdk.sh

step "tools: vfioctl, device plug-ins, version, man pages, make install/uninstall"
Scripts/test-tools.sh

step "Debian packages: dpkg-buildpackage -us -uc -b on a copy, lintian (no errors), the .debs unpacked and used"; Scripts/test-deb.sh

step "real KVM: the kvm-vfio device under the interposer, QEMU -accel kvm linking its VM to a model group"
Scripts/test-kvm.sh

step "kernel-verified: Linux 6.1, 6.12 and a minimal 6.12 (iommufd, no-IOMMU) under QEMU judge the model call for call"
Scripts/test-kernel.sh

step "libFuzzer: the operation and topology fuzzers, 30 s each, ASan on"
Scripts/fuzz.sh 30

step "main job"
Scripts/main-job.sh > /dev/null
echo "main job: OK"
