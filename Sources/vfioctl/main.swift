// vfioctl: the project's command-line tool (DESIGN.md, "Interfaces added in the second round").
// This file only routes a command line to the subcommand's own file; exit status 0 success,
// 1 failure, 2 usage.
import Glibc

let arguments = Array(CommandLine.arguments.dropFirst())
let usage = """
    usage: vfioctl topology capture [--root DIR]

    """

switch (arguments.first, arguments.dropFirst().first) {
case ("topology", "capture"):
    exit(TopologyCapture.run(Array(arguments.dropFirst(2))))
default:
    _ = usage.withCString { write(2, $0, strlen($0)) }
    exit(2)
}
