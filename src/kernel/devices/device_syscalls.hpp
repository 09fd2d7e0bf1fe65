// The hardware access calls: physical memory, DMA spaces, I/O ports and MMIO.
#pragma once

#include "kernel/core/call_registry.hpp"

namespace helsim::kernel {

// Written into the kernel's tables at its construction.
void register_device_calls(CallRegistry &calls);

} // namespace helsim::kernel
