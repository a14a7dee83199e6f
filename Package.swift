// swift-tools-version: 6.0
import PackageDescription

// Layers, each importing only downward:
//   C shims → the condition variable (LockProofSync) → drivers (PostgreSQL, Redis, HTTP) → server configuration → locking primitives → commerce core
//   → metrics → scenario runner → benchmark → the `lockproof` CLI.
// Each target declares exactly the modules its files import, no more (no transitive reach, no
// unused edge): scripts/check_imports.py checks it in `make test`.
let package = Package(
    name: "LockProof",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "lockproof", targets: ["lockproof"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        // C shims
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis", providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(
            name: "CMicroHTTPD", pkgConfig: "libmicrohttpd", providers: [.apt(["libmicrohttpd-dev"])]),
        // epoll (part of glibc: nothing to link) for the event-driven client of target runs.
        .systemLibrary(name: "CEpoll"),

        // The one condition variable (WaitCondition), below everything that blocks a thread: the
        // drivers (HTTP's worker pool), locking primitives, the commerce pool, the scenario runner.
        .target(name: "LockProofSync"),

        // Drivers
        .target(name: "LockProofPostgres", dependencies: ["CLibPQ"]),
        .target(name: "LockProofRedis", dependencies: ["CHiredis"]),
        .target(name: "LockProofHTTP", dependencies: ["CMicroHTTPD", "LockProofSync"]),

        // The HTTP API's routes, request reading and problem documents: pure, no I/O (fuzzed)
        .target(name: "LockProofAPI"),
        // Where the servers are (the environment's URLs and timeout), for every layer above the drivers
        .target(name: "LockProofConfiguration", dependencies: ["LockProofPostgres", "LockProofRedis"]),

        // Locking primitives
        .target(name: "LockProofLocking", dependencies: ["LockProofPostgres", "LockProofRedis", "LockProofSync"]),

        // The commerce core: one file per case
        .target(
            name: "LockProofCommerce",
            dependencies: ["LockProofConfiguration", "LockProofLocking", "LockProofPostgres", "LockProofRedis", "LockProofSync"]),

        // Metrics
        .target(
            name: "LockProofMetrics",
            dependencies: [
                "LockProofAPI", "LockProofCommerce", "LockProofLocking", "LockProofPostgres", "LockProofHTTP",
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]),

        // The HTTP API service of `lockproof serve --api-address`: the cases behind LockProofAPI's
        // routes, on a worker pool in front of connection pools, with RED metrics.
        .target(
            name: "LockProofService",
            dependencies: [
                "LockProofAPI", "LockProofHTTP", "LockProofCommerce", "LockProofLocking", "LockProofMetrics",
                "LockProofPostgres", "LockProofRedis", "LockProofConfiguration",
            ]),

        // Scenario runner: workload, checkers, thresholds, reports. It does not use the metrics
        // layer, so neither does lockproof-fuzz (no Prometheus, no libmicrohttpd in it).
        .target(
            name: "LockProofScenario",
            dependencies: [
                "LockProofConfiguration", "LockProofCommerce", "LockProofLocking", "LockProofPostgres", "LockProofRedis",
                "LockProofSync", "CEpoll",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]),

        // Benchmark: the matrix against pgbench's ceiling, reports, claim verdicts, metrics overhead
        .target(
            name: "LockProofBench",
            dependencies: [
                "LockProofConfiguration", "LockProofScenario", "LockProofMetrics", "LockProofCommerce", "LockProofLocking",
                "LockProofPostgres", "LockProofRedis", "LockProofHTTP",
            ]),

        // The CLI
        .executableTarget(
            name: "lockproof",
            dependencies: [
                "LockProofBench",
                "LockProofConfiguration",
                "LockProofScenario",
                "LockProofService",
                "LockProofMetrics",
                "LockProofCommerce",
                "LockProofLocking",
                "LockProofPostgres",
                "LockProofHTTP",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),

        // Fuzzing of the scenario and threshold parsers and of the API's request reader: libFuzzer entry points when built by
        // `make fuzz` (-sanitize=fuzzer -D LOCKPROOF_LIBFUZZER), a seeded random mutator otherwise.
        .executableTarget(
            name: "lockproof-fuzz", dependencies: ["LockProofScenario", "LockProofAPI"], path: "Sources/LockProofFuzz"),

        // Test targets declare every module they import, as the rest do (scripts/check_imports.py).
        .target(
            name: "LockProofTestSupport",
            dependencies: [
                "LockProofConfiguration", "LockProofCommerce", "LockProofLocking", "LockProofPostgres", "LockProofRedis",
                "LockProofSync",
            ],
            path: "Tests/Support"),
        .testTarget(
            name: "LockProofDriverTests",
            dependencies: ["LockProofTestSupport", "LockProofPostgres", "LockProofRedis", "LockProofCommerce"]),
        .testTarget(
            name: "LockProofLockingTests",
            dependencies: ["LockProofTestSupport", "LockProofLocking", "LockProofPostgres", "LockProofRedis", "LockProofSync"]),
        .testTarget(
            name: "LockProofCommerceTests",
            dependencies: [
                "LockProofTestSupport", "LockProofCommerce", "LockProofLocking", "LockProofPostgres", "LockProofRedis",
            ]),
        .testTarget(
            name: "LockProofScenarioTests",
            dependencies: [
                "LockProofTestSupport", "LockProofScenario", "LockProofCommerce", "LockProofLocking",
                "LockProofPostgres", "LockProofRedis", "LockProofHTTP",
            ]),
        .testTarget(
            name: "LockProofBenchTests",
            dependencies: [
                "LockProofTestSupport", "LockProofBench", "LockProofScenario", "LockProofCommerce", "LockProofPostgres",
            ]),
        .testTarget(
            name: "LockProofMetricsTests",
            dependencies: [
                "LockProofTestSupport", "LockProofMetrics", "LockProofHTTP", "LockProofCommerce", "LockProofLocking",
                "LockProofPostgres", "LockProofRedis",
            ]),
        // The CLI as a user runs it: tests that launch the built binaries (Tests/Support/Processes.swift finds them).
        .testTarget(
            name: "LockProofCLITests",
            dependencies: [
                "LockProofTestSupport", "LockProofScenario", "LockProofMetrics", "LockProofCommerce", "LockProofPostgres",
                "LockProofRedis", "LockProofHTTP",
            ]),
        .testTarget(
            name: "LockProofServiceTests",
            dependencies: [
                "LockProofTestSupport", "LockProofService", "LockProofAPI", "LockProofHTTP", "LockProofMetrics",
                "LockProofCommerce", "LockProofPostgres", "LockProofScenario",
            ]),
    ]
)
