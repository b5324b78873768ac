#if canImport(Glibc)
import Glibc
#endif

// vfioctl: the command-line front door of libswiftvfio (DESIGN.md: run, topology check/show/
// capture, state). This file is only the command table and the dispatcher; each command lives in
// its own file.

/// Every command, in the order `vfioctl --help` lists them.
let commands: [Command] = [
    .run,
    .topologyCheck,
    .topologyShow,
    .state,
]

exit(dispatch(Array(CommandLine.arguments.dropFirst()), commands))
