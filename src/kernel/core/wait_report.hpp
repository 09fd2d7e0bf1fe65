// The deadlock report's account of what a blocked thread waits on (ThreadReport::waits_on).
#pragma once

#include <string>

namespace helsim::kernel {

class Thread;

// What `thread` (a started fiber that has not ended) waits on: "futex 0x...", "pager 0x...",
// "nothing (runnable)", or for helDriveQueue the queue handle followed by the operations that
// would complete to that queue and still wait in some object, e.g.
//   helDriveQueue on queue handle 3; pending there: recvInline on lane handle 5
//   helDriveQueue on queue handle 3; nothing pending there
// Handles are those of the thread's universe. Walks every live object (report time only).
std::string describe_wait(Thread &thread);

} // namespace helsim::kernel
