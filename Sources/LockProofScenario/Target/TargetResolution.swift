import Foundation

// Resolving a target in this environment: its `${VARIABLE}`s, its base URLs and database URL.

extension Target {
    /// The base URLs with every `${VARIABLE}` replaced from `environment`; an unset or empty
    /// variable, or a result that is not an http(s) URL, is an error naming the file and variable.
    /// A variable may hold several URLs separated by spaces (`LOCKPROOF_SERVE_URLS="http://a:1 http://b:2"`):
    /// one entry then names as many instances as the environment gives, without editing the file.
    public func resolvedBaseURLs(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> [String] {
        try baseURLs.flatMap { url -> [String] in
            var problem: String?
            let resolved = substituteVariables(url) { name in
                guard let value = environment[name], !value.isEmpty else {
                    problem = problem ?? "instances.base_urls: the environment variable \(name) is not set (\(url))"
                    return ""
                }
                return value
            }
            if let problem { throw TargetResolutionError(file: file, message: problem) }
            let parts = resolved.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).map(String.init)
            guard !parts.isEmpty else {
                throw TargetResolutionError(file: file, message: "instances.base_urls: '\(url.prefix(200))' resolves to no URL")
            }
            return try parts.map { part in
                if isHTTPSURL(part) {
                    throw TargetResolutionError(file: file, message: "instances.base_urls: '\(part.prefix(200))': \(httpsRefusal)")
                }
                guard isHTTPURL(part) else {
                    throw TargetResolutionError(
                        file: file, message: "instances.base_urls: '\(part.prefix(200))' is not an http:// URL with a host")
                }
                return part.hasSuffix("/") ? String(part.dropLast()) : part
            }
        }
    }

    /// The implementation's database URL, from the variable the target names.
    public func databaseURL(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        guard let value = environment[databaseURLVariable], !value.isEmpty else {
            throw TargetResolutionError(
                file: file, message: "database.url_env: the environment variable \(databaseURLVariable) is not set")
        }
        return value
    }
}

/// A target that cannot be used in this environment (a variable it names is unset).
public struct TargetResolutionError: Error, Sendable, CustomStringConvertible, Equatable {
    public let file: String
    public let message: String
    public var description: String { "\(file): error: \(message)" }
}

/// `${NAME}` replaced by `value(NAME)`; other text kept.
func substituteVariables(_ text: String, _ value: (String) -> String) -> String {
    var result = ""
    var rest = Substring(text)
    while let start = rest.range(of: "${") {
        result += rest[..<start.lowerBound]
        guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
            result += rest[start.lowerBound...]
            return result
        }
        result += value(String(rest[start.upperBound..<end]))
        rest = rest[rest.index(after: end)...]
    }
    return result + rest
}

/// The names of the `${NAME}`s in a text, and whether each is a valid variable name.
func variableNames(_ text: String) -> [String] {
    var names: [String] = []
    _ = substituteVariables(text) { name in
        names.append(name)
        return ""
    }
    return names
}

func isVariableName(_ name: String) -> Bool {
    guard let first = name.first, first == "_" || (first.isASCII && first.isLetter) else { return false }
    return name.allSatisfy { $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }
}

/// An `http://` URL with a host, no query and no fragment: what `TargetClient` can talk to.
func isHTTPURL(_ text: String) -> Bool { hasHostAndNoQuery(text, scheme: "http") }

/// An `https://` URL: well formed, but the client speaks plain HTTP/1.1 only.
func isHTTPSURL(_ text: String) -> Bool { hasHostAndNoQuery(text, scheme: "https") }

/// What a target file (or a variable) with an `https://` base URL is told.
let httpsRefusal = "expected an http:// URL (TLS is not supported by the client)"

private func hasHostAndNoQuery(_ text: String, scheme wanted: String) -> Bool {
    guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
        scheme == wanted, let host = components.host, !host.isEmpty,
        components.query == nil, components.fragment == nil
    else { return false }
    return true
}
