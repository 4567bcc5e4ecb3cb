/// An error in a file the user wrote: which file, which line, what is wrong and what was expected.
///
/// `description` is in compiler style (`Procfile:3: invalid process name "web app": expected ...`)
/// so editors can jump to the line.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of problem this is; the executable maps codes to exit statuses.
    public enum Code: Sendable, Equatable {
        /// The file does not exist.
        case fileNotFound
        /// The file exists but could not be read.
        case unreadable
        /// The path names a directory, not a file.
        case isDirectory
        /// The path is a symbolic link to nothing, or part of a link loop.
        case brokenLink
        /// The path names a FIFO, a device or a socket: only regular files are read.
        case notRegularFile
        /// The file is larger than paas reads (`FileSystem.maximumFileSize`).
        case tooLarge
        /// The file is not valid UTF-8.
        case invalidUTF8
        /// A line does not follow the grammar.
        case syntax
        /// A name is defined twice where that is not allowed (Procfile process names).
        case duplicate
        /// The file defines nothing where something is required (a Procfile with no entries).
        case empty
        /// `${NAME:?message}` or `${NAME?message}` found its variable unset (or empty).
        case undefinedRequired
        /// A command-line or settings option has a bad value.
        case badOption
    }

    /// What kind of problem this is.
    public var code: Code
    /// The path as the user gave it.
    public var file: String
    /// The 1-based line the problem is on, or nil when it is not about one line.
    public var line: Int?
    /// "what is wrong; what was expected", without the file and line prefix.
    public var message: String

    /// Creates an error about `file` (and `line`, when the problem is on one line).
    public init(_ code: Code, file: String, line: Int?, _ message: String) {
        self.code = code
        self.file = file
        self.line = line
        self.message = message
    }

    /// `FILE:LINE: message`, or `FILE: message` when no line applies.
    public var description: String {
        if let line {
            return "\(file):\(line): \(message)"
        }
        return "\(file): \(message)"
    }
}

/// Something suspicious but accepted in a file the user wrote, such as an undefined variable.
public struct ConfigWarning: Sendable, Equatable, CustomStringConvertible {
    /// The path as the user gave it.
    public var file: String
    /// The 1-based line the warning is about.
    public var line: Int
    /// What was found and what paas did about it.
    public var message: String

    /// Creates a warning about `line` of `file`.
    public init(file: String, line: Int, _ message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    /// `FILE:LINE: warning: message`.
    public var description: String {
        "\(file):\(line): warning: \(message)"
    }
}
