// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif

// vfioctl: the command-line front door of libswiftvfio (vfioctl(1), man/man1/vfioctl.1: run, topology check/show/capture, state). This file is only the command table
// and the dispatcher's call; each command lives in its own file. Exit status 0 success,
// 1 failure, 2 usage.

/// Every command, in the order `vfioctl --help` lists them.
let commands: [Command] = [
    .run,
    .topologyCheck,
    .topologyShow,
    .topologyCapture,
    .state,
]

exit(dispatch(Array(CommandLine.arguments.dropFirst()), commands))
