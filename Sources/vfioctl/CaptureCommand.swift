// SPDX-License-Identifier: Apache-2.0
// `vfioctl topology capture` in the command table; the command itself is TopologyCapture.swift.

extension Command {
    /// `vfioctl topology capture`.
    static let topologyCapture = Command(
        words: ["topology", "capture"],
        synopsis: "[--root DIR]",
        summary: "Write a machine's sysfs (/sys, or DIR) as the model's JSON topology on standard output.",
        help: """
            options:
              --root DIR   read DIR instead of /sys
              -h, --help   this text
            """,
        main: { TopologyCapture.run($0) })
}
