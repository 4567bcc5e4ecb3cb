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
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.3.0"),
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
            dependencies: ["PaasConfig", "PaasRouter", "CPaasSys"]
        ),
        /// The router on each routed type's public port (swift-nio): backend tables swapped in one
        /// step, outlier ejection, per-backend counters. Depends on nothing else of paas.
        .target(
            name: "PaasRouter",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Atomics", package: "swift-atomics"),
            ]
        ),
        /// The small C seam: the fork/exec child path, epoll, signalfd, prctl.
        .target(name: "CPaasSys"),
        .testTarget(name: "PaasCoreTests", dependencies: ["PaasConfig", "PaasCore"]),
        .testTarget(
            name: "PaasRouterTests",
            dependencies: [
                "PaasRouter",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Atomics", package: "swift-atomics"),
            ]
        ),
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
