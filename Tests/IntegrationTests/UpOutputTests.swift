import Foundation
import Testing

/// The event stream under load: every line once, whole, correctly labelled.
@Suite(.serialized)
struct UpOutputTests {
    /// Writers print this when done and stay up: an exit would stop the others (foreman's rule).
    static let done = "WRITER-DONE"

    /// Checks writer output: `NAME | NAME SEQ xxx` with exactly `count` lines per writer,
    /// each seq once, each line `size - 1` bytes long, the label equal to the writer's PS.
    static func verify(_ stdout: [UInt8], writers: Int, count: Int, size: Int) -> (lost: Int, torn: Int, mislabelled: Int, duplicated: Int) {
        var seen: [String: [Bool]] = [:]
        var torn = 0, mislabelled = 0, duplicated = 0
        for raw in stdout.split(separator: 10) {
            let line = String(decoding: raw, as: UTF8.self)
            guard let bar = line.range(of: " | ") else { torn += 1; continue }
            let name = line[..<bar.lowerBound].trimmingCharacters(in: .whitespaces)
            let text = line[bar.upperBound...]
            if name == "system" || text == done { continue }
            let parts = text.split(separator: " ", maxSplits: 2)
            guard text.utf8.count == size - 1, parts.count == 3, let seq = Int(parts[1]), seq >= 0, seq < count,
                  parts[2].allSatisfy({ $0 == "x" }) else { torn += 1; continue }
            if parts[0] != name { mislabelled += 1; continue }
            var marks = seen[String(name)] ?? [Bool](repeating: false, count: count)
            if marks[seq] { duplicated += 1 }
            marks[seq] = true
            seen[String(name)] = marks
        }
        let received = seen.values.reduce(0) { $0 + $1.filter { $0 }.count }
        return (writers * count - received, torn, mislabelled, duplicated)
    }

    /// Runs 16 writers of 20,000 100-byte lines under `paas up` (each says it is done and stays
    /// up, so no exit stops the others), calling `whileWaiting` as it polls, and returns what
    /// `verify` finds in paas's stdout.
    static func runWriters(procfile: (String) -> String, formation: String, whileWaiting: (Running) -> Void = { _ in }) throws -> (lost: Int, torn: Int, mislabelled: Int, duplicated: Int) {
        let writer = try Binaries.fixture("writer")
        let count = 20_000, size = 100
        let app = try TempApp(procfile: procfile("\(writer) \(count) \(size)"))
        defer { app.remove() }
        let paas = try Running(["up", "--no-color", "--no-timestamp", "-m", formation], in: app.path, watching: [done])
        #expect(eventually(timeout: 60) { whileWaiting(paas); return paas.count(done) >= 16 })
        paas.signal(SIGTERM)
        #expect(paas.waitForExit() == 0)
        return verify(paas.stdoutBytes, writers: 16, count: count, size: size)
    }

    @Test(arguments: ["line", "block"])
    func sixteenWritersLoseNothing(mode: String) throws {
        let result = try Self.runWriters(procfile: { "w: \($0) \(mode); echo \(Self.done); exec sleep 1000\n" }, formation: "w=16")
        #expect(result.lost == 0 && result.torn == 0 && result.mislabelled == 0 && result.duplicated == 0, "\(result)")
    }

    @Test func sixteenWritersWhileFloodedWithSignals() throws {
        var sent = 0
        // Both types write "<PS> ..." so one check covers them.
        let result = try Self.runWriters(
            procfile: { "w: \($0) block; echo \(Self.done); exec sleep 1000\nv: \($0) line; echo \(Self.done); exec sleep 1000\n" },
            formation: "w=8,v=8",
            whileWaiting: { paas in for sig in [SIGCHLD, SIGWINCH, SIGCONT] { paas.signal(sig); sent += 1 } })
        #expect(sent > 30)
        #expect(result.lost == 0 && result.torn == 0 && result.mislabelled == 0 && result.duplicated == 0, "\(result)")
    }

    @Test func aSlowReaderMakesChildrenWaitWithBoundedMemory() throws {
        let writer = try Binaries.fixture("writer")
        // 16 x 80_000 x 100 bytes = 128 MB of child output, read slowly through a pipe.
        let count = 80_000, size = 100
        // Each writer marks when it is done and stays up, so that no exit stops the others.
        let app = try TempApp(procfile: "w: \(writer) \(count) \(size) block && touch done.$PS && exec sleep 1000\n")
        defer { app.remove() }
        let output = app.file("out.log")
        // A slow consumer: reads 64 KiB at a time with a pause between reads.
        let slowReader = "import sys,time\nout=open(sys.argv[1],'wb')\nwhile True:\n  b=sys.stdin.buffer.read1(65536)\n  if not b: break\n  out.write(b)\n  time.sleep(0.0005)\n"
        try app.write("slow.py", slowReader)
        let pipeline = try Running(["-c", "exec '\(Binaries.paas)' up --no-color --no-timestamp -m w=16 | python3 slow.py out.log"],
                                   in: app.path, executable: "/bin/sh")
        var peakKiB = 0
        var paasPIDs: [Int32] = []
        let allWritten = eventually(timeout: 120) {
            // This pipeline's paas only: other tests run their own `paas up` meanwhile.
            paasPIDs = ProcTable.children(of: pipeline.pid).filter { ProcTable.comm($0) == "paas" }
            for pid in paasPIDs { peakKiB = max(peakKiB, ProcTable.peakRSSKiB(pid) ?? 0) }
            return (1...16).allSatisfy { FileManager.default.fileExists(atPath: app.file("done.w.\($0)")) }
        }
        #expect(allWritten)
        for pid in paasPIDs { kill(pid, SIGTERM) }
        #expect(pipeline.waitForExit() == 0)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: output)))
        let result = Self.verify(bytes, writers: 16, count: count, size: size)
        #expect(result.lost == 0 && result.torn == 0 && result.mislabelled == 0 && result.duplicated == 0, "\(result)")
        // 128 MB went through; paas held its runtime (about 12 MB in a debug build), the
        // 8 MiB history ring, the output queue (4 MiB high water) and buffers: bounded.
        #expect(peakKiB > 0 && peakKiB < 48_000, "peak RSS \(peakKiB) KiB")
    }

    @Test func aOneMebibyteLineArrivesWholeAndLongerLinesAreCutNotLost() throws {
        // `partial` waits until the long lines are out, then exits: that exit ends the run, and
        // its last line, which has no newline, is flushed then.
        let app = try TempApp(procfile: """
        one: python3 -c "import sys; sys.stdout.write('a' * (1048576 - 1) + '\\n')"; touch done.$PS; exec sleep 1000
        three: python3 -c "import sys; sys.stdout.write('b' * (3 * 1048576 + 5) + '\\n')"; touch done.$PS; exec sleep 1000
        partial: while [ $(ls done.* 2>/dev/null | wc -l) -lt 2 ]; do sleep 0.02; done; printf 'no newline at the end'
        """)
        defer { app.remove() }
        let paas = try Running(["up", "--no-color", "--no-timestamp"], in: app.path)
        #expect(paas.waitForExit(timeout: 30) == 0)
        let lines = logLines(paas.stdout)
        let one = lines.filter { $0.name == "one.1" }
        #expect(one.count == 1 && one.first?.text.utf8.count == 1048575)
        let three = lines.filter { $0.name == "three.1" }
        #expect(three.count == 4)
        #expect(three.allSatisfy { $0.text.utf8.count <= 1 << 20 })
        let total: Int = three.map { $0.text.utf8.count }.reduce(0, +)
        #expect(total == 3 * 1_048_576 + 5)
        // Pieces after the first are marked as continuations with '+'.
        let continuationMarks = paas.stdout.split(separator: "\n").filter { $0.hasPrefix("three.1") && $0.contains(" + b") }.count
        #expect(continuationMarks == 3)
        #expect(lines.contains { $0.name == "partial.1" && $0.text == "no newline at the end" })
    }

    @Test func stdoutToAFileOrDevNullWorks() throws {
        let app = try TempApp(procfile: "a: echo hello from a; exit 0\n")
        defer { app.remove() }
        let toFile = try Running(["-c", "'\(Binaries.paas)' up --no-color > out.log"], in: app.path, executable: "/bin/sh")
        #expect(toFile.waitForExit() == 0)
        #expect(app.read("out.log")?.contains("hello from a") == true)
        let toNull = try Running(["-c", "'\(Binaries.paas)' up > /dev/null"], in: app.path, executable: "/bin/sh")
        #expect(toNull.waitForExit() == 0)
    }

    @Test func aReaderThatGoesAwayStopsTheFormationCleanly() throws {
        let marker = "paashead\(UUID().uuidString.prefix(6))"
        let app = try TempApp(procfile: "chatty: sh -c 'while :; do echo line; sleep 0.01; done; : \(marker)'\nquiet: sh -c 'sleep 1000; : \(marker)'\n")
        defer { app.remove() }
        let pipeline = try Running(["-c", "'\(Binaries.paas)' up --no-color | head -3; echo \"paas exited ${PIPESTATUS:-}\""], in: app.path, executable: "/bin/bash")
        #expect(pipeline.waitForExit() == 0)
        #expect(pipeline.stdoutLines.count == 4)
        // paas saw EPIPE, stopped both children and exited: nothing with the marker survives.
        #expect(eventually(timeout: 5) { ProcTable.pids(matching: marker).isEmpty && ProcTable.pids(matching: "\(app.path)").isEmpty })
    }

    @Test func jsonLogFormatIsOneObjectPerLine() throws {
        let app = try TempApp(procfile: "web: echo out; echo err >&2; printf 'tab\\there \"q\" \\\\ \\001'; echo\n")
        defer { app.remove() }
        let result = try runPaas(["up", "--log-format", "json"], in: app.path)
        #expect(result.status == 0)
        var streams: Set<String> = []
        var texts: [String] = []
        for line in result.stdout.split(separator: "\n") {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let stream = try #require(object["stream"] as? String)
            streams.insert(stream)
            #expect(object["time"] is String && object["process"] is String && object["type"] is String && object["text"] is String)
            if stream != "event" {
                #expect(object["process"] as? String == "web.1" && object["type"] as? String == "web" && object["instance"] as? Int == 1)
                texts.append(object["text"] as! String)
            } else {
                #expect(object["process"] as? String == "system")
            }
        }
        #expect(streams == ["stdout", "stderr", "event"])
        #expect(texts.contains("out") && texts.contains("err") && texts.contains("tab\there \"q\" \\ \u{1}"))
    }
}

/// Colour only on a terminal: `script` gives paas a pseudo-terminal as stdout.
@Suite struct UpColorTests {
    static let hasScript = FileManager.default.isExecutableFile(atPath: "/usr/bin/script")

    @Test(.enabled(if: hasScript, "needs script(1) for a pseudo-terminal"))
    func colourOnATerminalUnlessNoColor() throws {
        // web prints once worker has printed, then exits and ends the run: both colours appear.
        let app = try TempApp(procfile: "web: while [ ! -f printed ]; do sleep 0.01; done; echo hello web\nworker: echo hello worker; touch printed; exec sleep 1000\n")
        defer { app.remove() }
        let command = "'\(Binaries.paas)' up"
        try? FileManager.default.removeItem(atPath: app.file("printed"))
        let onTTY = try Running(["-qec", command, "/dev/null"], in: app.path, executable: "/usr/bin/script")
        #expect(onTTY.waitForExit() == 0)
        // One colour per type: cyan for the first, yellow for the second, bold white for system.
        #expect(onTTY.stdout.contains("\u{1B}[36m") && onTTY.stdout.contains("\u{1B}[33m") && onTTY.stdout.contains("\u{1B}[1;37m"))
        try? FileManager.default.removeItem(atPath: app.file("printed"))
        let noColor = try Running(["-qec", command, "/dev/null"], in: app.path, environment: ["NO_COLOR": "1"], executable: "/usr/bin/script")
        #expect(noColor.waitForExit() == 0)
        #expect(!noColor.stdout.contains("\u{1B}["))
        #expect(noColor.stdout.contains("hello web"))
        try? FileManager.default.removeItem(atPath: app.file("printed"))
        let flag = try Running(["-qec", command + " --no-color", "/dev/null"], in: app.path, executable: "/usr/bin/script")
        #expect(flag.waitForExit() == 0)
        #expect(!flag.stdout.contains("\u{1B}["))
        // Not a terminal: no colour.
        try? FileManager.default.removeItem(atPath: app.file("printed"))
        let piped = try runPaas(["up"], in: app.path)
        #expect(!piped.stdout.contains("\u{1B}[") && piped.stdout.contains("hello web"))
    }
}
