/* epoll (Linux), which Swift's Glibc module does not bring: the event-driven client of target runs
   (Sources/LockProofScenario/EventLoop.swift) waits on its sockets with it. */
#include <sys/epoll.h>
