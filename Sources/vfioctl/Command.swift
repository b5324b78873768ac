// SPDX-License-Identifier: Apache-2.0
#if canImport(Glibc)
import Glibc
#endif

// The command table's element and the conventions every vfioctl command follows: `--help` on
// every command, exit status 0 (success), 1 (failure) or 2 (usage), errors on stderr naming what
// was wrong.

/// One vfioctl command: the words that name it (`["topology", "show"]`), its synopsis and help
/// text, and its entry point, which gets the arguments after the command words.
struct Command: Sendable {
    /// The words after `vfioctl` that select this command.
    let words: [String]
    /// The argument synopsis after the words (`PATH [--format text|json|dot]`).
    let synopsis: String
    /// One line for the command list.
    let summary: String
    /// The rest of `--help`: what it does, its options, what it prints.
    let help: String
    /// Runs the command on its arguments; returns the exit status.
    let main: @Sendable ([String]) -> Int32

    /// `vfioctl <words> <synopsis>`.
    var usageLine: String { "vfioctl " + (words + [synopsis]).filter { !$0.isEmpty }.joined(separator: " ") }

    /// The full `--help` text.
    var helpText: String { "usage: \(usageLine)\n\n\(summary)\n\n\(help)" }
}

/// Exit statuses (0 success, 1 failure, 2 usage, as vfioctl(1) documents).
enum Exit {
    static let success: Int32 = 0
    static let failure: Int32 = 1
    static let usage: Int32 = 2
}

/// Writes `text` to standard output as is.
func out(_ text: String) {
    var t = text
    t.withUTF8 { buf in
        var off = 0
        while off < buf.count {
            let n = write(1, buf.baseAddress! + off, buf.count - off)
            if n <= 0 { if n < 0 && errno == EINTR { continue }; return }
            off += n
        }
    }
}

/// Writes "vfioctl: <message>" to standard error.
func err(_ message: String) {
    var t = "vfioctl: " + message + "\n"
    t.withUTF8 { buf in _ = write(2, buf.baseAddress!, buf.count) }
}

/// A usage error of `command`: the message and the usage line on stderr; returns 2.
func usageError(_ command: Command, _ message: String) -> Int32 {
    err("\(command.words.joined(separator: " ")): \(message)\nusage: \(command.usageLine)\n(vfioctl \(command.words.joined(separator: " ")) --help for more)")
    return Exit.usage
}

/// A failure of `command`: the message on stderr; returns 1.
func failure(_ command: Command, _ message: String) -> Int32 {
    err("\(command.words.joined(separator: " ")): \(message)")
    return Exit.failure
}

/// The text of errno `e` (strerror).
func errnoText(_ e: Int32) -> String { String(cString: strerror(e)) }
