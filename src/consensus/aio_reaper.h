// AioReaper: tears down libraft's kernel AIO contexts off the event loop.
//
// libraft 0.15 opens each log segment with an AIO context of its own and, when it closes the
// segment (at every snapshot, and whenever a segment fills), destroys that context on the loop
// thread. io_destroy(2) waits out RCU grace periods: 24-47 ms here, a stall of every commit. So
// libraft is linked statically with its syscall() calls wrapped (CMake: --wrap=syscall), and
// while deferring is on, an io_destroy is handed to a thread of this module instead. That is
// safe for libraft's segment closes, which come after their writes completed; it is not at
// shutdown, which may cancel writes in flight (a synchronous io_destroy waits for them), so
// deferring ends when an engine begins to close. Thread-safe.
#pragma once

#include <cstdint>

namespace synod {

class AioReaper {
 public:
  // From now on, an io_destroy is deferred (a started engine calls it)...
  static void Enable();
  // ...until an engine begins to close: libraft's closing may go on for a few loop iterations
  // after the engine's own callback, so deferring stays off for good.
  static void Disable();
  // Contexts handed over and destroyed so far.
  static uint64_t destroyed();
};

}  // namespace synod
