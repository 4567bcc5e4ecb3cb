import NIOCore
import NIOHTTP1

enum HTTPFrontHandler {
    static func configure(channel: any Channel, route: RouteState) throws {
        try channel.pipeline.syncOperations.addHandler(TCPFrontHandler(route: route))
    }
}
