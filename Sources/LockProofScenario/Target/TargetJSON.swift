import Foundation

// The JSON a target's responses are read into, and the paths its response rules look at.

/// A JSON value: what a response body is read into and a request body is written from. A number
/// with a fraction (or beyond Int) is `.number`; results and conditions need whole ones.
public indirect enum TargetJSON: Sendable, Equatable, Codable {
    case null
    case boolean(Bool)
    case integer(Int)
    case number(Double)
    case text(String)
    case list([TargetJSON])
    case object([String: TargetJSON])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .boolean(value)
        } else if let value = try? container.decode(Int.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .text(value)
        } else if let value = try? container.decode([TargetJSON].self) {
            self = .list(value)
        } else {
            self = .object(try container.decode([String: TargetJSON].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .boolean(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .text(let value): try container.encode(value)
        case .list(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}

/// `$`, `$.data.id`, `$.items[0].id`, `$['odd key']`: a path into a JSON response.
public struct TargetJSONPath: Sendable, Equatable {
    public enum Component: Sendable, Equatable {
        case key(String)
        case index(Int)
    }

    public let components: [Component]
    public let text: String

    /// nil when `text` is not such a path.
    public init?(_ text: String) {
        var rest = Substring(text)
        guard rest.first == "$" else { return nil }
        rest = rest.dropFirst()
        var components: [Component] = []
        while let first = rest.first {
            if first == "." {
                rest = rest.dropFirst()
                let name = rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }
                guard !name.isEmpty else { return nil }
                components.append(.key(String(name)))
                rest = rest.dropFirst(name.count)
            } else if first == "[" {
                guard let close = rest.firstIndex(of: "]") else { return nil }
                let inside = rest[rest.index(after: rest.startIndex)..<close]
                if let index = Int(inside), index >= 0, inside.allSatisfy(\.isNumber) {
                    components.append(.index(index))
                } else if inside.count >= 2, let quote = inside.first, quote == "'" || quote == "\"", inside.last == quote {
                    components.append(.key(String(inside.dropFirst().dropLast())))
                } else {
                    return nil
                }
                rest = rest[rest.index(after: close)...]
            } else {
                return nil
            }
        }
        self.components = components
        self.text = text
    }

    public func evaluate(_ json: TargetJSON?) -> TargetJSON? {
        var current = json
        for component in components {
            switch (component, current) {
            case (.key(let key), .object(let object)?): current = object[key]
            case (.index(let index), .list(let list)?) where index < list.count: current = list[index]
            default: return nil
            }
        }
        return current
    }
}
