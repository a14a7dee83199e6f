import LockProofCommerce

/// A refused option value: names the option, the value and what is accepted (serve exits 2).
public struct APIConfigurationError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The design one instance runs, one strategy per case, as a deployed service runs one design.
/// The seed's by default.
public struct APIStrategies: Sendable, Equatable, CustomStringConvertible {
    public var chargeBalance = ChargeBalanceStrategy.seed
    public var processPayment = ProcessPaymentStrategy.seed
    public var issueCoupon = IssueCouponStrategy.seed
    public var createOrder = CreateOrderStrategy.seed
    public var orderState = StateChangeStrategy.seed
    public var cartQuantity = StateChangeStrategy.seed
    public var dailySpend = DailySpendStrategy.seed

    public init() {}

    /// `case=strategy,...` (e.g. `charge-balance=optimistic-retry,issue-coupon=atomic`); cases not
    /// named keep the seed's strategy. A case named twice, an unknown case or strategy is refused.
    public static func parse(_ text: String) throws(APIConfigurationError) -> APIStrategies {
        var strategies = APIStrategies()
        var seen = Set<CaseName>()
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let shown = String(item.prefix(80))
            guard parts.count == 2 else {
                throw APIConfigurationError("--strategy: '\(shown)' is not case=strategy (e.g. charge-balance=seed)")
            }
            let caseText = parts[0].trimmingCharacters(in: " ")
            let strategyText = parts[1].trimmingCharacters(in: " ")
            guard let caseName = CaseName(rawValue: caseText) else {
                throw APIConfigurationError(
                    "--strategy: unknown case '\(caseText.prefix(40))'; cases: \(CaseName.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard seen.insert(caseName).inserted else {
                throw APIConfigurationError("--strategy: case '\(caseName.rawValue)' is named twice")
            }
            guard caseName.strategyNames.contains(strategyText) else {
                throw APIConfigurationError(
                    "--strategy: '\(strategyText.prefix(40))' is not a strategy of \(caseName.rawValue); strategies: \(caseName.strategyNames.joined(separator: ", "))"
                )
            }
            switch caseName {
            case .chargeBalance: strategies.chargeBalance = ChargeBalanceStrategy(rawValue: strategyText)!
            case .processPayment: strategies.processPayment = ProcessPaymentStrategy(rawValue: strategyText)!
            case .issueCoupon: strategies.issueCoupon = IssueCouponStrategy(rawValue: strategyText)!
            case .createOrder: strategies.createOrder = CreateOrderStrategy(rawValue: strategyText)!
            case .orderState: strategies.orderState = StateChangeStrategy(rawValue: strategyText)!
            case .cartQuantity: strategies.cartQuantity = StateChangeStrategy(rawValue: strategyText)!
            case .dailySpend: strategies.dailySpend = DailySpendStrategy(rawValue: strategyText)!
            }
        }
        return strategies
    }

    public func strategyName(of caseName: CaseName) -> String {
        switch caseName {
        case .chargeBalance: return chargeBalance.rawValue
        case .processPayment: return processPayment.rawValue
        case .issueCoupon: return issueCoupon.rawValue
        case .createOrder: return createOrder.rawValue
        case .orderState: return orderState.rawValue
        case .cartQuantity: return cartQuantity.rawValue
        case .dailySpend: return dailySpend.rawValue
        }
    }

    public var description: String {
        CaseName.allCases.map { "\($0.rawValue)=\(strategyName(of: $0))" }.joined(separator: ",")
    }
}

/// A per-user request rate: at most `requests` in each fixed window of `windowSeconds`.
public struct RateLimit: Sendable, Equatable, CustomStringConvertible {
    public let requests: Int
    public let windowSeconds: Int

    public init(requests: Int, windowSeconds: Int) {
        self.requests = requests
        self.windowSeconds = windowSeconds
    }

    /// `N/s`, `N/min` or `N/h` (N from 1 to 1,000,000).
    public static func parse(_ text: String) throws(APIConfigurationError) -> RateLimit {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        let shown = String(text.prefix(40))
        guard parts.count == 2, parts[0].count <= 7, parts[0].allSatisfy({ $0.isASCII && $0.isNumber }),
            let count = Int(parts[0]), (1...1_000_000).contains(count)
        else {
            throw APIConfigurationError("--rate-limit: '\(shown)' is not N/s, N/min or N/h with N from 1 to 1000000 (e.g. 20/s)")
        }
        let window: Int
        switch parts[1] {
        case "s": window = 1
        case "min": window = 60
        case "h": window = 3_600
        default:
            throw APIConfigurationError("--rate-limit: '\(shown)': the unit must be s, min or h (e.g. 20/s)")
        }
        return RateLimit(requests: count, windowSeconds: window)
    }

    public var description: String {
        "\(requests)/\(windowSeconds == 1 ? "s" : windowSeconds == 60 ? "min" : "h")"
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in characters: Character) -> String {
        var text = self
        while text.first == characters { text = text.dropFirst() }
        while text.last == characters { text = text.dropLast() }
        return String(text)
    }
}
