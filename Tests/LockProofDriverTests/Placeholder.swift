import XCTest
final class PlaceholderLockProofDriverTests: XCTestCase { func testNothing() {} }
