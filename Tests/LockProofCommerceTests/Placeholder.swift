import XCTest
final class PlaceholderLockProofCommerceTests: XCTestCase { func testNothing() {} }
