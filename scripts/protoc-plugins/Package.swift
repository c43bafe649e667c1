// swift-tools-version: 6.1
// Only builds the protoc plugins scripts/gen-protos needs; not part of provision's own build.
import PackageDescription

let package = Package(
    name: "protoc-plugins",
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf", exact: "1.39.0"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", exact: "2.4.1"),
    ],
    targets: [
        .target(name: "Anchor", path: "Anchor"),
    ]
)
