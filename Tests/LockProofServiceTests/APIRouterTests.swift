import LockProofAPI
import XCTest

/// The request reader on its own: every bad input ends in a problem with the right status, named
/// field and no request; every good one in the typed request. No servers.
final class APIRouterTests: XCTestCase {
    private func read(
        _ method: String, _ path: String, _ body: String? = nil, contentType: String? = "application/json",
        key: String? = nil
    ) -> Result<APIRequest, APIProblem> {
        let raw = APIRawRequest(
            method: method, path: path, contentType: body == nil ? nil : contentType, idempotencyKey: key,
            body: Array((body ?? "").utf8))
        do throws(APIProblem) {
            return .success(try APIRouter.read(raw))
        } catch {
            return .failure(error)
        }
    }

    private func problem(_ result: Result<APIRequest, APIProblem>, file: StaticString = #filePath, line: UInt = #line) -> APIProblem? {
        guard case .failure(let problem) = result else {
            XCTFail("expected a problem, got \(result)", file: file, line: line)
            return nil
        }
        XCTAssertEqual(problem.outcome, .notApplied, file: file, line: line)
        return problem
    }

    func testEveryRouteReadsItsValidRequest() throws {
        XCTAssertEqual(try read("GET", "/users/7").get(), .getUser(userId: 7))
        XCTAssertEqual(try read("HEAD", "/users/7").get(), .getUser(userId: 7))
        XCTAssertEqual(
            try read("POST", "/users/7/charges", #"{"amount": 500}"#, key: "k-1").get(),
            .chargeUser(userId: 7, amount: 500, idempotencyKey: "k-1"))
        XCTAssertEqual(try read("POST", "/users/7/spends", #"{"amount": 300}"#).get(), .spendUser(userId: 7, amount: 300))
        XCTAssertEqual(
            try read("POST", "/users/7/cart/items", #"{"product_id":3,"quantity":2}"#).get(),
            .addCartItem(userId: 7, productId: 3, quantity: 2))
        XCTAssertEqual(try read("PUT", "/users/7/cart/items/3", #"{"quantity":0}"#).get(), .setCartItem(userId: 7, productId: 3, quantity: 0))
        XCTAssertEqual(try read("GET", "/coupons/2").get(), .getCoupon(couponId: 2))
        XCTAssertEqual(try read("POST", "/coupons/2/issues", #"{"user_id":9}"#).get(), .issueCoupon(couponId: 2, userId: 9))
        XCTAssertEqual(
            try read("POST", "/orders", #"{"user_id":9,"items":[{"product_id":1,"quantity":2},{"quantity":1,"product_id":4}]}"#).get(),
            .createOrder(userId: 9, items: [.init(productId: 1, quantity: 2), .init(productId: 4, quantity: 1)]))
        XCTAssertEqual(try read("GET", "/orders/5").get(), .getOrder(orderId: 5))
        XCTAssertEqual(try read("POST", "/orders/5/payment").get(), .payOrder(orderId: 5))
        XCTAssertEqual(try read("POST", "/orders/5/complete").get(), .completeOrder(orderId: 5))
        XCTAssertEqual(try read("POST", "/orders/5/cancel").get(), .cancelOrder(orderId: 5))
        // JSON Schema counts 2.0 and 2e0 as integers; the media type may carry parameters.
        XCTAssertEqual(
            try read("POST", "/users/1/charges", #"{"amount": 2.0e0}"#, contentType: "Application/JSON; charset=utf-8").get(),
            .chargeUser(userId: 1, amount: 2, idempotencyKey: nil))
        XCTAssertEqual(
            try read("POST", "/users/1/charges", #"{"amount": 1000000000000}"#).get(),
            .chargeUser(userId: 1, amount: 1_000_000_000_000, idempotencyKey: nil))
        XCTAssertEqual(try read("GET", "/users/9223372036854775807").get(), .getUser(userId: Int64.max))
    }

    func testMalformedJSONIs400() {
        for body in [
            "", "{", #"{"amount": }"#, #"{"amount": 1,}"#, #"{"amount": 01}"#, #"{"amount": 1} x"#, "{'amount': 1}",
            #"{"amount": 1, "amount": 2}"#, String(repeating: "[", count: 40) + String(repeating: "]", count: 40),
            "{\"amount\": \"\u{01}\"}", #"{"amount": NaN}"#, #"{"a": "\ud800"}"#,
        ] {
            let result = read("POST", "/users/1/charges", body)
            if let problem = problem(result) {
                XCTAssertEqual(problem.status, body.hasPrefix("[[") ? 400 : 400, "body \(body.prefix(40))")
                XCTAssertEqual(problem.slug, "malformed-json")
            }
        }
        // Invalid UTF-8.
        let raw = APIRawRequest(method: "POST", path: "/users/1/charges", contentType: "application/json", body: [0x7B, 0x22, 0xC0, 0xAF, 0x22, 0x3A, 0x31, 0x7D])
        do throws(APIProblem) {
            _ = try APIRouter.read(raw)
            XCTFail("invalid UTF-8 accepted")
        } catch {
            XCTAssertEqual(error.status, 400)
        }
    }

    func testWrongTypesAndAbsurdValuesAre422NamingTheField() {
        let cases: [(String, String, String, String)] = [
            ("/users/1/charges", #"{"amount": "5"}"#, "amount", "expected an integer, got a string"),
            ("/users/1/charges", #"{"amount": 5.5}"#, "amount", "expected an integer"),
            ("/users/1/charges", #"{"amount": -5}"#, "amount", "not within 1–1000000000000"),
            ("/users/1/charges", #"{"amount": 0}"#, "amount", "not within"),
            ("/users/1/charges", #"{"amount": 1000000000001}"#, "amount", "not within"),
            ("/users/1/charges", #"{"amount": 92233720368547758070}"#, "amount", "not within"),
            ("/users/1/charges", #"{"amount": 1e400}"#, "amount", "not within"),
            ("/users/1/charges", #"{"amount": null}"#, "amount", "got null"),
            ("/users/1/charges", #"{"amount": true}"#, "amount", "got a boolean"),
            ("/users/1/charges", #"{}"#, "amount", "is required"),
            ("/users/1/charges", #"[1]"#, "body", "expected a JSON object"),
            ("/users/1/charges", #"{"amount": 5, "currency": "EUR"}"#, "currency", "is not a known field"),
            ("/users/1/spends", #"{"amount": 0}"#, "amount", "not within 1–1000000000000"),
            ("/users/1/spends", #"{"amount": -3}"#, "amount", "not within"),
            ("/users/1/spends", #"{"amount": 1000000000001}"#, "amount", "not within"),
            ("/users/1/spends", #"{"amount": "3"}"#, "amount", "expected an integer, got a string"),
            ("/users/1/spends", #"{}"#, "amount", "is required"),
            ("/users/1/spends", #"{"amount": 3, "day": "2026-12-05"}"#, "day", "is not a known field"),
            ("/users/1/cart/items", #"{"product_id": 0, "quantity": 1}"#, "product_id", "not within"),
            ("/users/1/cart/items", #"{"product_id": 1, "quantity": 0}"#, "quantity", "not within 1–10000"),
            ("/orders", #"{"user_id": 1, "items": []}"#, "items", "an order has 1–50"),
            ("/orders", #"{"user_id": 1, "items": [{"product_id": 1, "quantity": -1}]}"#, "items[0].quantity", "not within"),
            ("/orders", #"{"user_id": 1, "items": [{"product_id": 1, "quantity": 1, "x": 1}]}"#, "items[0].x", "not a known field"),
            ("/orders", #"{"user_id": 1, "items": [7]}"#, "items[0]", "expected an object"),
            ("/orders", #"{"user_id": 1, "items": {"product_id": 1}}"#, "items", "expected an array"),
            ("/coupons/1/issues", #"{"user_id": "1"}"#, "user_id", "expected an integer"),
        ]
        for (path, body, field, message) in cases {
            guard let problem = problem(read("POST", path, body)) else { continue }
            XCTAssertEqual(problem.status, 422, "\(path) \(body)")
            XCTAssertTrue(
                problem.errors.contains { $0.field == field && $0.message.contains(message) },
                "\(path) \(body): \(problem.errors)")
        }
        // Every wrong field is named, not just the first.
        let both = problem(read("POST", "/users/1/cart/items", #"{"product_id": "x", "quantity": 99999}"#))
        XCTAssertEqual(both?.errors.map(\.field), ["product_id", "quantity"])
        let setNegative = problem(read("PUT", "/users/1/cart/items/2", #"{"quantity": -1}"#))
        XCTAssertEqual(setNegative?.status, 422)
    }

    func testPathIdsAreValidatedBeforeAnythingElse() {
        for id in ["0", "01", "-1", "abc", "1.5", "9223372036854775808", "%31", " 1"] {
            let problem = problem(read("GET", "/users/\(id)"))
            XCTAssertEqual(problem?.status, 422, id)
            XCTAssertEqual(problem?.errors.first?.field, "userId", id)
        }
        XCTAssertEqual(problem(read("PUT", "/users/1/cart/items/0", #"{"quantity":1}"#))?.errors.first?.field, "productId")
        XCTAssertEqual(problem(read("POST", "/users/0/spends", #"{"amount":1}"#))?.errors.first?.field, "userId")
    }

    func testUnknownPathsMethodsMediaTypesAndBounds() {
        XCTAssertEqual(problem(read("GET", "/users"))?.status, 404)
        XCTAssertEqual(problem(read("GET", "/users/1/"))?.status, 404)
        XCTAssertEqual(problem(read("GET", "/"))?.status, 404)
        XCTAssertEqual(problem(read("GET", "relative"))?.status, 404)
        let notAllowed = problem(read("DELETE", "/orders/1"))
        XCTAssertEqual(notAllowed?.status, 405)
        XCTAssertEqual(notAllowed?.allow, ["GET", "HEAD"])
        XCTAssertEqual(problem(read("GET", "/orders/1/payment"))?.allow, ["POST"])
        XCTAssertEqual(problem(read("GET", "/users/1/spends"))?.allow, ["POST"])
        XCTAssertEqual(problem(read("POST", "/users/1/spends", #"{"amount":1}"#, contentType: "text/plain"))?.status, 415)
        XCTAssertEqual(problem(read("POST", "/users/1/charges", #"{"amount":1}"#, contentType: "text/plain"))?.status, 415)
        XCTAssertEqual(problem(read("POST", "/users/1/charges", #"{"amount":1}"#, contentType: nil))?.status, 415)
        XCTAssertEqual(problem(read("POST", "/orders/1/payment", #"{"x":1}"#))?.status, 422)
        let big = "{\"amount\": 1, \"pad\": \"" + String(repeating: "x", count: APILimits.maximumBodyBytes) + "\"}"
        XCTAssertEqual(problem(read("POST", "/users/1/charges", big))?.status, 413)
        XCTAssertEqual(problem(read("GET", "/users/" + String(repeating: "1", count: APILimits.maximumPathBytes)))?.status, 414)
    }

    func testIdempotencyKeyIsBounded() {
        for key in ["", String(repeating: "k", count: 129), "has space", "ключ", "a/b"] {
            let problem = problem(read("POST", "/users/1/charges", #"{"amount":1}"#, key: key))
            XCTAssertEqual(problem?.status, 422, key)
            XCTAssertEqual(problem?.errors.first?.field, "Idempotency-Key")
        }
        XCTAssertNoThrow(try read("POST", "/users/1/charges", #"{"amount":1}"#, key: String(repeating: "k", count: 128)).get())
    }

    func testIntegerReadingOfNumberText() {
        XCTAssertEqual(JSONValue.integer(fromNumberText: "12"), .value(12))
        XCTAssertEqual(JSONValue.integer(fromNumberText: "-9223372036854775808"), .value(Int64.min))
        XCTAssertEqual(JSONValue.integer(fromNumberText: "9223372036854775808"), .outOfRange)
        XCTAssertEqual(JSONValue.integer(fromNumberText: "1.55e1"), .notInteger)
        XCTAssertEqual(JSONValue.integer(fromNumberText: "1.5e1"), .value(15))
        XCTAssertEqual(JSONValue.integer(fromNumberText: "150e-1"), .value(15))
        XCTAssertEqual(JSONValue.integer(fromNumberText: "0e999999"), .value(0))
        XCTAssertEqual(JSONValue.integer(fromNumberText: "1e999999"), .outOfRange)
        XCTAssertEqual(JSONValue.integer(fromNumberText: "1e-999999"), .notInteger)
    }

    func testProblemDocumentsAreRFC9457() throws {
        let problem = APIProblem.invalid([FieldProblem(field: "amount", message: "is \"odd\"")])
        let object = try JSONSerialization.jsonObject(with: Data(problem.json(instance: "/users/1/charges").utf8)) as? [String: Any]
        XCTAssertEqual(object?["type"] as? String, "/problems/invalid-request")
        XCTAssertEqual(object?["status"] as? Int, 422)
        XCTAssertEqual(object?["instance"] as? String, "/users/1/charges")
        XCTAssertEqual(object?["outcome"] as? String, "not_applied")
        XCTAssertEqual((object?["errors"] as? [[String: String]])?.first?["message"], "is \"odd\"")
    }
}
