/// Reads the members of a body object, collecting every problem (not just the first); unknown
/// members are refused (the document says additionalProperties: false).
struct FieldReader {
    let members: [(String, JSONValue)]
    var problems: [FieldProblem] = []
    private var used: Set<String> = []

    init(members: [(String, JSONValue)]) { self.members = members }

    mutating func value(_ name: String) -> JSONValue? {
        used.insert(name)
        guard let value = members.first(where: { $0.0 == name })?.1 else {
            problems.append(FieldProblem(field: name, message: "is required"))
            return nil
        }
        return value
    }

    mutating func integer(_ name: String, in range: ClosedRange<Int64>) -> Int64? {
        guard let value = value(name) else { return nil }
        return Self.integer(value, field: name, in: range, problems: &problems)
    }

    static func integer(_ value: JSONValue, field: String, in range: ClosedRange<Int64>, problems: inout [FieldProblem]) -> Int64? {
        guard case .number(let text) = value else {
            problems.append(FieldProblem(field: field, message: "expected an integer, got \(value.typeName)"))
            return nil
        }
        switch JSONValue.integer(fromNumberText: text) {
        case .notInteger:
            problems.append(FieldProblem(field: field, message: "expected an integer, got \(text.prefix(40))"))
        case .outOfRange:
            problems.append(FieldProblem(field: field, message: "\(text.prefix(40)) is not within \(range.lowerBound)–\(range.upperBound)"))
        case .value(let number):
            guard range.contains(number) else {
                problems.append(FieldProblem(field: field, message: "\(number) is not within \(range.lowerBound)–\(range.upperBound)"))
                return nil
            }
            return number
        }
        return nil
    }

    mutating func orderLines(_ name: String) -> [APIRequest.OrderLine]? {
        guard let value = value(name) else { return nil }
        guard case .array(let elements) = value else {
            problems.append(FieldProblem(field: name, message: "expected an array, got \(value.typeName)"))
            return nil
        }
        guard (1...APILimits.maximumOrderItems).contains(elements.count) else {
            problems.append(
                FieldProblem(field: name, message: "has \(elements.count) items; an order has 1–\(APILimits.maximumOrderItems)"))
            return nil
        }
        var lines: [APIRequest.OrderLine] = []
        for (position, element) in elements.enumerated() {
            let field = "\(name)[\(position)]"
            guard case .object(let members) = element else {
                problems.append(FieldProblem(field: field, message: "expected an object, got \(element.typeName)"))
                continue
            }
            var reader = FieldReader(members: members)
            let product = reader.integer("product_id", in: 1...APILimits.maximumId)
            let quantity = reader.integer("quantity", in: 1...APILimits.maximumQuantity)
            reader.refuseUnknown()
            problems += reader.problems.map { FieldProblem(field: "\(field).\($0.field)", message: $0.message) }
            if let product, let quantity { lines.append(APIRequest.OrderLine(productId: product, quantity: quantity)) }
        }
        return lines.count == elements.count ? lines : nil
    }

    mutating func refuseUnknown() {
        for (name, _) in members where !used.contains(name) {
            problems.append(FieldProblem(field: String(name.prefix(64)), message: "is not a known field"))
        }
    }

    /// Throws the problems collected, if any.
    mutating func finish() throws(APIProblem) {
        refuseUnknown()
        guard problems.isEmpty else { throw APIProblem.invalid(problems) }
    }
}

extension String {
    func trimmingSpaces() -> String {
        var text = Substring(self)
        while text.first == " " || text.first == "\t" { text = text.dropFirst() }
        while text.last == " " || text.last == "\t" { text = text.dropLast() }
        return String(text)
    }
}
