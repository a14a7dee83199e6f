import Foundation
import LockProofLocking
import Synchronization

public struct ConcurrentRunTimedOut: Error, CustomStringConvertible {
    public let seconds: Double
    public let unfinished: Int
    public var description: String { "\(unfinished) clients still running after \(seconds) s: a hang" }
}

/// Runs `clients` threads, each with its own state made by `setup` (connections are opened before
/// the barrier), all released at one barrier, and waits for them with a timeout so that a hang fails
/// the test instead of blocking it. Returns each client's result, in client order.
public func runConcurrently<State, T: Sendable>(
    clients: Int, timeout: Double = 120, setup: @escaping @Sendable (Int) throws -> State,
    _ body: @escaping @Sendable (Int, State) throws -> T
) throws -> [Result<T, any Error>] {
    let barrier = StartBarrier(parties: clients)
    let group = DispatchGroup()
    let results = ResultBox<T>(count: clients)
    for index in 0..<clients {
        group.enter()
        let thread = Thread {
            defer { group.leave() }
            let state: State
            do {
                state = try setup(index)
            } catch {
                results.set(index, .failure(error))
                barrier.arriveAndWait()
                return
            }
            barrier.arriveAndWait()
            results.set(index, Result { try body(index, state) })
        }
        thread.stackSize = 1 << 20
        thread.start()
    }
    if group.wait(timeout: .now() + timeout) == .timedOut {
        throw ConcurrentRunTimedOut(seconds: timeout, unfinished: results.unfinished)
    }
    return results.values
}

final class ResultBox<T: Sendable>: Sendable {
    private let storage: Mutex<[Result<T, any Error>?]>
    init(count: Int) { storage = Mutex(Array(repeating: nil, count: count)) }
    func set(_ index: Int, _ result: Result<T, any Error>) {
        storage.withLock { $0[index] = result }
    }
    var unfinished: Int {
        storage.withLock { $0.filter { $0 == nil }.count }
    }
    var values: [Result<T, any Error>] {
        storage.withLock { $0.map { $0! } }
    }
}

extension Result {
    public var value: Success? { try? get() }
    public var error: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
