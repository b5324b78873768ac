#if canImport(Glibc)
import Glibc
#endif

// vfioctl: the command-line front door of libswiftvfio (DESIGN.md, "Interfaces added in the
// second round": run, topology check/show/capture, state). This file is only the command table
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
