import Foundation
import LockProofHTTP
import LockProofLocking
import LockProofMetrics
import XCTest

/// What a short run waits on: renderings of /metrics, the interval between them, and the bounded
/// waits for one after a given moment.
final class ScrapeTrackerTests: XCTestCase {
    func testLingerDefaultFollowsTheObservedScrapeInterval() {
        let tracker = ScrapeTracker()
        XCTAssertEqual(tracker.count, 0)
        XCTAssertNil(tracker.observedIntervalSeconds)
        XCTAssertEqual(tracker.defaultLingerSeconds(), 0, "nobody scrapes: nothing would read the final values")
        tracker.recordScrape(at: 10)
        XCTAssertEqual(tracker.defaultLingerSeconds(), 30, "one scrape: the interval is unknown")
        tracker.recordScrape(at: 11)
        XCTAssertEqual(tracker.observedIntervalSeconds, 1)
        XCTAssertEqual(tracker.defaultLingerSeconds(), 3, "two intervals plus a second")
        tracker.recordScrape(at: 111)
        XCTAssertEqual(tracker.defaultLingerSeconds(), 120, "bounded")
        tracker.recordScrape(at: 111.1)
        XCTAssertEqual(tracker.defaultLingerSeconds(), 1.2, accuracy: 1e-9)
        XCTAssertEqual(tracker.count, 4)
    }

    func testWaitEndsAtAScrapeAfterTheInstantOrAtItsBound() {
        let tracker = ScrapeTracker()
        let before = monotonicSeconds()
        tracker.recordScrape(at: before - 1)
        XCTAssertNil(tracker.waitForScrape(after: before, timeoutSeconds: 0.1), "a scrape before the instant does not count")
        XCTAssertNil(tracker.waitForScrape(after: before, timeoutSeconds: 60, stop: { true }), "stop ends the wait")
        let instant = monotonicSeconds()
        let scraper = Thread {
            Thread.sleep(forTimeInterval: 0.2)
            tracker.recordScrape()
        }
        scraper.start()
        let waited = tracker.waitForScrape(after: instant, timeoutSeconds: 60)
        XCTAssertNotNil(waited)
        XCTAssertGreaterThanOrEqual(waited ?? -1, 0)
    }

    func testTheEndpointCountsRenderingsOfMetricsOnly() throws {
        let (endpoint, port) = try startEndpoint(LockProofMetrics())
        defer { endpoint.stop() }
        XCTAssertEqual(try BlockingHTTPClient.get(port: port, path: "/healthz").status, 200)
        XCTAssertEqual(endpoint.scrapes.count, 0)
        let instant = monotonicSeconds()
        XCTAssertEqual(try BlockingHTTPClient.get(port: port, path: "/metrics").status, 200)
        XCTAssertEqual(endpoint.scrapes.count, 1)
        XCTAssertNotNil(endpoint.scrapes.waitForScrape(after: instant, timeoutSeconds: 0), "recorded after rendering")
    }
}
