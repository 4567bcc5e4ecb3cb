// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "paas",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "paas", targets: ["paas"]),
        .library(name: "PaasCore", targets: ["PaasCore"]),
        .library(name: "PaasConfig", targets: ["PaasConfig"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .executableTarget(
            name: "paas",
            dependencies: [
                "PaasConfig",
                "PaasCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        /// The configuration as values: Procfile, env files, app.json, the formation and its
        /// ports, the difference between two configurations. Depends on nothing else of paas.
        .target(name: "PaasConfig"),
        .target(
            name: "PaasCore",
            dependencies: ["PaasConfig", "CPaasSys"]
        ),
        /// The small C seam: the fork/exec child path, epoll, signalfd, prctl.
        .target(name: "CPaasSys"),
        .testTarget(name: "PaasCoreTests", dependencies: ["PaasConfig", "PaasCore"]),
        /// Runs the built `paas` binary (and C fixtures it compiles with cc) against real processes.
        .testTarget(name: "IntegrationTests"),
    ]
)

for target in package.targets where target.type != .system && target.name != "CPaasSys" {
    var settings = target.swiftSettings ?? []
    settings.append(contentsOf: [
        .swiftLanguageMode(.v6),
        .enableUpcomingFeature("ExistentialAny"),
        .enableUpcomingFeature("MemberImportVisibility"),
        .enableUpcomingFeature("InternalImportsByDefault"),
    ])
    target.swiftSettings = settings
}
