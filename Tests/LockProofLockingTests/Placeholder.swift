import XCTest
final class PlaceholderLockProofLockingTests: XCTestCase { func testNothing() {} }
