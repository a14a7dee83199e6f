import Foundation

// The templates a target's requests are written from: values, text templates and JSON bodies.

/// A scalar of a template's arguments, a `when` condition or a JSON body.
public enum TargetValue: Sendable, Equatable {
    case integer(Int)
    case text(String)
    case boolean(Bool)
    case null

    var text: String {
        switch self {
        case .integer(let value): return String(value)
        case .text(let value): return value
        case .boolean(let value): return value ? "true" : "false"
        case .null: return "null"
        }
    }

    /// In a path, a text argument is percent-encoded; a number is written as is.
    var pathText: String {
        switch self {
        case .text(let value): return value.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? value
        default: return text
        }
    }

    var json: TargetJSON {
        switch self {
        case .integer(let value): return .integer(value)
        case .text(let value): return .text(value)
        case .boolean(let value): return .boolean(value)
        case .null: return .null
        }
    }
}

/// Text with `{argument}` placeholders (`{item.product}` inside `$each_item`); `{{` and `}}` are
/// literal braces.
public struct TargetTemplate: Sendable, Equatable {
    public enum Part: Sendable, Equatable {
        case literal(String)
        case argument(String)
    }

    public let parts: [Part]
    public let text: String

    /// The arguments it names.
    public var arguments: [String] {
        parts.compactMap {
            if case .argument(let name) = $0 { return name }
            return nil
        }
    }

    /// nil when it names an argument that is absent (a header or field then left out). A template
    /// that is exactly one placeholder keeps the argument's type (a number stays a number in JSON).
    func render(_ values: [String: TargetValue]) -> TargetValue? {
        if parts.count == 1, case .argument(let name) = parts[0] { return values[name] }
        var result = ""
        for part in parts {
            switch part {
            case .literal(let text): result += text
            case .argument(let name):
                guard let value = values[name] else { return nil }
                result += value.text
            }
        }
        return .text(result)
    }
}

extension TargetValue {
    /// A rendered path: each argument percent-encoded, the literal text as written.
    static func pathOf(_ template: TargetTemplate, _ values: [String: TargetValue]) -> String? {
        var result = ""
        for part in template.parts {
            switch part {
            case .literal(let text): result += text
            case .argument(let name):
                guard let value = values[name] else { return nil }
                result += value.pathText
            }
        }
        return result
    }
}

/// A JSON body template: objects and lists of templates and constants; `{$each_item: T}` is a list
/// with T rendered once per order item (`{item.product}`, `{item.quantity}`).
public indirect enum TargetBody: Sendable, Equatable {
    case object([Field])
    case list([TargetBody])
    case template(TargetTemplate)
    case constant(TargetValue)
    case eachItem(TargetBody)

    public struct Field: Sendable, Equatable {
        public let name: String
        public let value: TargetBody
    }

    /// nil when the value names an absent argument (a field then left out, a list element too).
    func render(_ values: [String: TargetValue], items: [(product: Int, quantity: Int)]) -> TargetJSON? {
        switch self {
        case .constant(let value): return value.json
        case .template(let template): return template.render(values)?.json
        case .list(let elements): return .list(elements.compactMap { $0.render(values, items: items) })
        case .object(let fields):
            var object: [String: TargetJSON] = [:]
            for field in fields {
                if let value = field.value.render(values, items: items) { object[field.name] = value }
            }
            return .object(object)
        case .eachItem(let element):
            return .list(items.compactMap { item in
                var scoped = values
                scoped["item.product"] = .integer(item.product)
                scoped["item.quantity"] = .integer(item.quantity)
                return element.render(scoped, items: [])
            })
        }
    }

    /// Every template in it.
    var templates: [TargetTemplate] {
        switch self {
        case .constant: return []
        case .template(let template): return [template]
        case .list(let elements): return elements.flatMap(\.templates)
        case .object(let fields): return fields.flatMap(\.value.templates)
        case .eachItem(let element): return element.templates
        }
    }
}
