import LockProofCommerce
import LockProofLocking
import LockProofPostgres

extension LockProofMetrics {
    /// Records at least one sample into every series of the catalog, with values spread over the
    /// histogram buckets. For the benchmark (render time with the whole catalog populated) and for
    /// tests of the exposition with no series left at 0; never for a real process.
    public func populateEverySeries() {
        for caseName in CaseName.allCases {
            let name = caseName.rawValue
            for (index, strategy) in MetricCatalog.strategies(of: caseName).enumerated() {
                for outcome in OperationOutcome.allCases {
                    recordOperation(
                        case: caseName, strategy: strategy, outcome: outcome,
                        seconds: MetricCatalog.secondsBuckets[index % MetricCatalog.secondsBuckets.count])
                }
            }
            for (index, seconds) in MetricCatalog.secondsBuckets.enumerated() {
                let lock = LockKind.allCases[index % LockKind.allCases.count]
                record(.lockWaited(lock, seconds: seconds * 0.9), caseName: name)
                record(.lockHeld(lock, seconds: seconds * 0.9), caseName: name)
            }
            for lock in LockKind.allCases {
                record(.lockWaited(lock, seconds: 20), caseName: name)  // beyond the last bucket
                record(.lockHeld(lock, seconds: 20), caseName: name)
                for reason in LockFailureReason.allCases { record(.lockAcquireFailed(lock, reason), caseName: name) }
            }
            record(.retryAttempt, caseName: name)
            record(.retryExhausted, caseName: name)
            for kind in RetryCallKind.allCases { record(.retryCall(kind), caseName: name) }
            for entity in MetricCatalog.conflictEntities { record(.optimisticConflict(entity: entity), caseName: name) }
            record(.databaseError(.deadlock, constraint: nil), caseName: name)
            record(.databaseError(.serializationFailure, constraint: nil), caseName: name)
            for constraint in MetricCatalog.uniqueConstraints {
                record(.databaseError(.uniqueViolation, constraint: constraint), caseName: name)
            }
            record(.distributedLockLost, caseName: name)
        }
        record(.compensation(succeeded: true), caseName: CaseName.processPayment.rawValue)
        record(.compensation(succeeded: false), caseName: CaseName.processPayment.rawValue)
        setCompensationsPending(1)
        recordCircuitBreakerOpen(seconds: 1)
        for (index, route) in MetricCatalog.httpRoutes.enumerated() {
            for (offset, status) in [200, 404, 500].enumerated() {
                let buckets = MetricCatalog.secondsBuckets
                recordHTTPRequest(route: route, status: status, seconds: buckets[(index + offset) % buckets.count] * 0.9)
            }
            recordRateLimited(route: route)
        }
        for (index, operation) in MetricCatalog.targetOperations.enumerated() {
            for (offset, status) in MetricCatalog.targetStatuses.enumerated() {
                let buckets = MetricCatalog.secondsBuckets
                recordTargetRequest(operation: operation, status: status, seconds: buckets[(index + offset) % buckets.count] * 0.9)
            }
        }
        for pool in PoolKind.allCases {
            for seconds in MetricCatalog.secondsBuckets + [20] { record(.poolWaited(pool, seconds: seconds * 0.9, holdingLock: false), caseName: "") }
        }
    }
}
