// The client side: what runs inside a POSIX process (mlibc's sysdeps for Managarm, here
// helsim::posix's calls).
#pragma once

#include <cstdint>

namespace helsim::posix::detail {

// A process thread's entry: `launch` is the server's Launch for it. It fetches its process
// data with superGetProcessData, keeps its per-thread state behind the fs word, runs main and
// exits with its result.
void process_entry(std::uintptr_t launch);

} // namespace helsim::posix::detail
