// Entry points of the IRQ and kernlet syscalls. The table in syscalls.cpp lists them; the
// semantics are the interrupt controller's (irq.hpp) and the kernlets' (kernlet.hpp).
#pragma once

#include <helsim/hel.h>

#include "kernel/core/call_registry.hpp"

namespace helsim::kernel {

class Thread;

HelError sys_access_irq(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_handle_irq(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_configure_irq(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_acknowledge_irq(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_automate_irq(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_bind_kernlet(Thread &self, const HelWord *args, HelWord *outs);

// The IRQ and kernlet syscalls. Written into the kernel's tables at its construction.
void register_irq_calls(CallRegistry &calls);

} // namespace helsim::kernel
