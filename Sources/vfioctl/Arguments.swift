// SPDX-License-Identifier: Apache-2.0
// The project's own small argument parser (the root package takes no third-party packages):
// long options with a value (`--format dot`, `--format=dot`) or without, `-h`/`--help`, `--` to
// end the options, positional arguments. Enough for vfioctl and no more.

/// An option a command accepts.
struct OptionSpec {
    /// `--name`.
    let name: String
    /// The value's placeholder in messages (`FORMAT`), or nil for a flag.
    let value: String?
}

/// A usage mistake, with the message to print before the usage line.
struct UsageError: Error {
    let message: String
}

/// What the parser found.
struct ParsedArguments {
    /// Options given with a value (the last one wins), by name without the dashes.
    var values: [String: String] = [:]
    /// Flags given, by name without the dashes.
    var flags: Set<String> = []
    /// Positional arguments, in order (after `--`, everything).
    var positionals: [String] = []
    /// Whether `-h` or `--help` was given.
    var help = false
}

/// Parses `args` against `options`. `stopAtPositional` ends option parsing at the first
/// positional argument (for `run`, whose program's own options must pass through untouched).
func parseArguments(_ args: [String], options: [OptionSpec], stopAtPositional: Bool = false) throws(UsageError) -> ParsedArguments {
    var result = ParsedArguments()
    var i = 0
    while i < args.count {
        let a = args[i]
        i += 1
        if a == "--" {
            result.positionals += args[i...]
            break
        }
        if a == "-h" || a == "--help" {
            result.help = true
            continue
        }
        if a.hasPrefix("-") && a != "-" {
            var name = a
            var inline: String?
            if let eq = a.firstIndex(of: "=") {
                name = String(a[..<eq])
                inline = String(a[a.index(after: eq)...])
            }
            guard name.hasPrefix("--"), let spec = options.first(where: { $0.name == name }) else {
                throw UsageError(message: "unknown option '\(a)'")
            }
            let key = String(name.dropFirst(2))
            if let placeholder = spec.value {
                if let inline {
                    result.values[key] = inline
                } else {
                    guard i < args.count else { throw UsageError(message: "\(name) needs a \(placeholder)") }
                    result.values[key] = args[i]
                    i += 1
                }
            } else {
                if inline != nil { throw UsageError(message: "\(name) takes no value") }
                result.flags.insert(key)
            }
            continue
        }
        result.positionals.append(a)
        if stopAtPositional {
            result.positionals += args[i...]
            break
        }
    }
    return result
}
