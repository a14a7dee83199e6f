/// What kind of metric a series is: the one vocabulary of the metrics catalog (Prometheus types)
/// and of scenario thresholds (k6's words). It lives with the event vocabulary (Events.swift), the
/// lowest layer both the metrics and the scenario layers import.
public enum MetricKind: String, Sendable, CaseIterable {
    /// Only goes up. Thresholds: `count`, `rate` (per second of the run).
    case counter
    /// A level. Thresholds: `value`, `min`, `max`.
    case gauge
    /// Samples in seconds (k6 calls it a trend). Thresholds: `avg`, `min`, `max`, `med`, `p(N)`,
    /// `count`.
    case histogram

    /// k6's name for a histogram, as thresholds call it.
    public static let trend = MetricKind.histogram

    /// The word threshold messages use: k6's (`trend` for a histogram).
    public var thresholdName: String { self == .histogram ? "trend" : rawValue }
}
