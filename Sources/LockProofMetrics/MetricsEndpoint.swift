import LockProofHTTP

/// What `/healthz` reports.
public struct HealthReport: Sendable, Equatable {
    public var healthy: Bool
    public var detail: String
    public init(healthy: Bool, detail: String) {
        self.healthy = healthy
        self.detail = detail
    }
    public static let ok = HealthReport(healthy: true, detail: "ok")
}

/// Serves `GET /metrics` (the Prometheus text exposition) and `GET /healthz` over libmicrohttpd.
public final class MetricsEndpoint: Sendable {
    /// The content type of the Prometheus text format 0.0.4, which libmicrohttpd does not set itself.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    public let metrics: LockProofMetrics
    public let server: HTTPServer
    /// When `/metrics` was last rendered: what a short run waits on before its first and after its
    /// last operation.
    public let scrapes = ScrapeTracker()

    /// `health` runs on the server's threads for every `/healthz` request: it must be thread-safe
    /// and quick (read a flag, do not query a database).
    public init(
        metrics: LockProofMetrics, address: HTTPBindAddress, limits: HTTPServer.Limits = HTTPServer.Limits(),
        health: @escaping @Sendable () -> HealthReport = { .ok }
    ) {
        self.metrics = metrics
        let scrapes = scrapes
        server = HTTPServer(
            address: address, limits: limits,
            routes: [
                "/metrics": { request in
                    let body = metrics.renderBytes()
                    // A HEAD (a health probe) reads no values: it is no scrape to wait for.
                    if request.method == "GET" { scrapes.recordScrape() }
                    return HTTPResponse(status: 200, contentType: MetricsEndpoint.contentType, body: body)
                },
                "/healthz": { _ in
                    let report = health()
                    return HTTPResponse(status: report.healthy ? 200 : 503, text: report.detail + "\n")
                },
            ])
    }

    public func start() throws { try server.start() }
    public func stop() { server.stop() }
    /// The port it listens on once started (the ephemeral one when asked for port 0).
    public var boundPort: Int? { server.boundPort }
}
