import CEpoll
import Foundation
import LockProofLocking

/// One epoll loop on one dedicated thread (issue 18): many non-blocking sockets and timers, each
/// with its handler, all called on the thread that runs the loop. Not thread-safe: everything but
/// `init` happens on that thread. `epoll_wait` sleeps until a socket is ready or the nearest timer
/// is due, never past `longestWait` (the loop's owner looks at stop requests that often).
public final class EventLoop {
    public typealias Handler = (_ events: UInt32) -> Void

    private let epoll: Int32
    private var handlers: [Int32: Handler] = [:]
    /// Due times by timer id; `heap` orders them (entries of cancelled timers are skipped, and the
    /// heap is rebuilt from the live ones when they outnumber them: memory stays bounded).
    private var timers: [Int: (due: Double, fire: () -> Void)] = [:]
    private var heap = TimerHeap()
    private var nextTimer = 0
    /// Work to run on the loop's next turn (a completion known before its request went out).
    private var soon: [() -> Void] = []
    private var events = [epoll_event](repeating: epoll_event(), count: 512)
    /// A buffer for reads done inside a handler (one at a time on the loop's thread), so that
    /// thousands of idle connections hold no read buffer each.
    public let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
    static let longestWait = 0.01

    public init() throws {
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epoll >= 0 else { throw EventLoopError(message: "epoll_create1: \(String(cString: strerror(errno)))") }
    }

    deinit {
        Glibc.close(epoll)
        scratch.deallocate()
    }

    /// Watches `descriptor` for `events` (EPOLLIN, EPOLLOUT, …; level-triggered), replacing its
    /// handler and events if it is watched already.
    public func watch(_ descriptor: Int32, _ events: UInt32, _ handler: @escaping Handler) {
        var event = epoll_event()
        event.events = events
        event.data.fd = descriptor
        let known = handlers[descriptor] != nil
        handlers[descriptor] = handler
        if epoll_ctl(epoll, known ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, descriptor, &event) != 0 && !known {
            // Not pollable (never a socket): report it as an error at once, on the next turn.
            schedule { handler(EPOLLERR.rawValue) }
        }
    }

    /// Stops watching `descriptor` (before it is closed: its number may be reused at once).
    public func forget(_ descriptor: Int32) {
        guard handlers.removeValue(forKey: descriptor) != nil else { return }
        var event = epoll_event()
        _ = epoll_ctl(epoll, EPOLL_CTL_DEL, descriptor, &event)
    }

    /// Calls `fire` on the loop at monotonic second `due` (or just after); the id cancels it.
    @discardableResult
    public func timer(at due: Double, _ fire: @escaping () -> Void) -> Int {
        nextTimer += 1
        timers[nextTimer] = (due, fire)
        heap.push(due, nextTimer)
        if heap.count > 2 * timers.count + 64 { heap = TimerHeap(timers.map { ($0.value.due, $0.key) }) }
        return nextTimer
    }

    public func cancel(timer id: Int) { timers.removeValue(forKey: id) }

    /// Runs `work` on the loop's next turn, not now (the caller's stack unwinds first).
    public func schedule(_ work: @escaping () -> Void) { soon.append(work) }

    /// Turns the loop until `done()`: ready sockets' handlers, due timers, scheduled work, and
    /// `tick()` once a turn (at least every `longestWait` seconds).
    public func run(until done: () -> Bool, tick: () -> Void) {
        while !done() {
            var wait = Self.longestWait
            if !soon.isEmpty { wait = 0 }
            while let (due, id) = heap.first {
                guard let live = timers[id], live.due == due else {
                    heap.pop()
                    continue
                }
                wait = min(wait, max(0, due - monotonicSeconds()))
                break
            }
            let ready = events.withUnsafeMutableBufferPointer {
                epoll_wait(epoll, $0.baseAddress, Int32($0.count), Int32((wait * 1000).rounded(.up)))
            }
            for slot in 0..<max(0, Int(ready)) {
                let event = events[slot]
                handlers[event.data.fd]?(event.events)
            }
            let now = monotonicSeconds()
            while let (due, id) = heap.first, due <= now {
                heap.pop()
                if let live = timers[id], live.due == due {
                    timers.removeValue(forKey: id)
                    live.fire()
                }
            }
            while !soon.isEmpty {
                let work = soon
                soon.removeAll(keepingCapacity: true)
                work.forEach { $0() }
            }
            tick()
        }
    }
}

public struct EventLoopError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// A binary min-heap of (due, id).
struct TimerHeap {
    private var items: [(due: Double, id: Int)] = []

    init() {}

    init(_ entries: [(Double, Int)]) {
        for (due, id) in entries { push(due, id) }
    }

    var count: Int { items.count }
    var first: (Double, Int)? { items.first.map { ($0.due, $0.id) } }

    mutating func push(_ due: Double, _ id: Int) {
        items.append((due, id))
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child].due < items[parent].due else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() {
        guard !items.isEmpty else { return }
        items.swapAt(0, items.count - 1)
        items.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < items.count && items[left].due < items[smallest].due { smallest = left }
            if right < items.count && items[right].due < items[smallest].due { smallest = right }
            guard smallest != parent else { return }
            items.swapAt(parent, smallest)
            parent = smallest
        }
    }
}
