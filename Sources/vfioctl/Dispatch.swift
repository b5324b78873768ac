// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif

// Finds the command the leading words name and runs it; lists commands for `--help` and for a
// word that names a group of commands (`vfioctl topology`).

/// The program-wide help: every command's usage and summary.
func globalHelp(_ commands: [Command], prefix: [String] = []) -> String {
    var text = "usage: vfioctl \(prefix.isEmpty ? "" : prefix.joined(separator: " ") + " ")COMMAND [ARGS...]\n\n"
    if prefix.isEmpty {
        text += "vfioctl runs programs against libswiftvfio's model of the Linux VFIO group layer and\n"
        text += "inspects topologies and running models.\n\n"
    }
    text += "commands:\n"
    for c in commands where c.words.starts(with: prefix) {
        text += "  \(c.usageLine)\n      \(c.summary)\n"
    }
    text += "\n`vfioctl COMMAND --help` describes a command. Exit status: 0 success, 1 failure, 2 usage.\n"
    return text
}

/// Runs the command `args` names; returns the exit status.
func dispatch(_ args: [String], _ commands: [Command]) -> Int32 {
    if args.isEmpty {
        err("no command given")
        out(globalHelp(commands))
        return Exit.usage
    }
    if args == ["-h"] || args == ["--help"] || args == ["help"] {
        out(globalHelp(commands))
        return Exit.success
    }
    // The command with the longest matching word list.
    let match = commands.filter { args.starts(with: $0.words) }.max { $0.words.count < $1.words.count }
    if let match {
        return match.main(Array(args.dropFirst(match.words.count)))
    }
    // A group word (`topology`) without a known subcommand.
    let group = commands.filter { $0.words.count > 1 && $0.words[0] == args[0] }
    if !group.isEmpty {
        let rest = args.dropFirst()
        if rest.first == "-h" || rest.first == "--help" {
            out(globalHelp(commands, prefix: [args[0]]))
            return Exit.success
        }
        err(rest.isEmpty ? "\(args[0]): no subcommand given" : "\(args[0]): unknown subcommand '\(rest.first!)'")
        FileStream.stderrHelp(globalHelp(commands, prefix: [args[0]]))
        return Exit.usage
    }
    err("unknown command '\(args[0])' (vfioctl --help lists the commands)")
    return Exit.usage
}

/// Help text on standard error (after a usage error).
enum FileStream {
    static func stderrHelp(_ text: String) {
        var t = text
        t.withUTF8 { buf in _ = write(2, buf.baseAddress!, buf.count) }
    }
}
