// The IRQ and kernlet syscalls' rows; the semantics are the interrupt controller's (irq.hpp)
// and the kernlets' (kernlet.hpp).
#pragma once

#include <helsim/hel.h>

#include "kernel/core/call_registry.hpp"

namespace helsim::kernel {

// The IRQ and kernlet syscalls. Written into the kernel's tables at its construction.
void register_irq_calls(CallRegistry &calls);

} // namespace helsim::kernel
