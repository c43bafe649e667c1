// swift-tools-version: 6.1
// provision: a Talos Linux homelab orchestrator. See README.md and ../shared/design.md.
import PackageDescription

/// Swift 6 language mode everywhere; warnings are treated as a defect (CI builds with -warnings-as-errors).
let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
]

let package = Package(
    name: "provision",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "provision", targets: ["provision"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.1"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    targets: [
        // Inventory and playbook model, validation, step graph, executor, journal, lock, events.
        // Knows nothing of Talos, Kubernetes or any hypervisor.
        .target(
            name: "ProvisionCore",
            dependencies: [
                "CZlib",
                .product(name: "Yams", package: "Yams"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        // libvirt's C API, for Unraid and the lab's hypervisor (test:///default).
        .systemLibrary(name: "CLibvirt", path: "Sources/CLibvirt", pkgConfig: "libvirt", providers: [.apt(["libvirt-dev"])]),
        // zlib: the gzip'd tar Talos' Kubeconfig call returns, and gzip'd EC2 user data.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", providers: [.apt(["zlib1g-dev"])]),
        // Talos machine API client, secrets bundle, PKI, machine configs, schematics.
        .target(
            name: "TalosKit",
            dependencies: [
                "ProvisionCore", "CZlib",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            exclude: ["Schemas/README.md"],
            resources: [.copy("Schemas/v1.12.json"), .copy("Schemas/v1.13.json")],
            swiftSettings: strict
        ),
        // Small Kubernetes client: kubeconfig, discovery, server-side apply, waits, drain.
        .target(
            name: "KubeKit",
            dependencies: [
                "ProvisionCore",
                .product(name: "Yams", package: "Yams"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict
        ),
        // Machine providers: Proxmox, libvirt, bare metal, AWS.
        .target(
            name: "Providers",
            dependencies: [
                "ProvisionCore", "CLibvirt",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict
        ),
        // The catalog of step kinds that playbooks name with `uses:`.
        .target(
            name: "Steps",
            dependencies: ["ProvisionCore", "TalosKit", "KubeKit", "Providers"],
            resources: [.copy("Manifests")],
            swiftSettings: strict
        ),
        // The digital twin: simulated nodes and APIs.
        .target(
            name: "Lab",
            dependencies: [
                "ProvisionCore", "TalosKit", "KubeKit", "Providers",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "provision",
            dependencies: [
                "ProvisionCore", "TalosKit", "Steps", "Lab", "Providers",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        // scripts/bench's Talos measurements (simulated nodes, real client and steps).
        .executableTarget(name: "provision-bench", dependencies: ["Lab", "Steps", "TalosKit", "ProvisionCore"],
                          path: "Benchmarks/TalosBench", swiftSettings: strict),
        .testTarget(name: "ProvisionCoreTests", dependencies: ["ProvisionCore", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "StepsTests", dependencies: ["Steps", "ProvisionCore", "TestSupport"], swiftSettings: strict),
        .target(name: "TestSupport", dependencies: ["ProvisionCore"], path: "Tests/TestSupport", swiftSettings: strict),
        .testTarget(name: "TalosKitTests", dependencies: ["TalosKit", "ProvisionCore", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "KubeKitTests", dependencies: ["KubeKit"], swiftSettings: strict),
        .testTarget(name: "ProvidersTests", dependencies: ["Providers", "ProvisionCore", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "LabTests", dependencies: ["Lab", "Steps", "TalosKit", "Providers", "ProvisionCore", "TestSupport"], swiftSettings: strict),
        .testTarget(
            name: "CLITests",
            dependencies: ["provision", "ProvisionCore", "TalosKit", "Providers", "TestSupport"],
            swiftSettings: strict
        ),
    ]
)
