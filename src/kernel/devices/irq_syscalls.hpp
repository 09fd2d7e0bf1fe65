// Entry points of the IRQ and kernlet syscalls. The table in syscalls.cpp lists them; the
// semantics are the interrupt controller's (irq.hpp) and the kernlets' (kernlet.hpp).
#pragma once

#include <helsim/hel.h>

namespace helsim::kernel {

class Thread;

HelError sys_access_irq(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_handle_irq(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_configure_irq(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_acknowledge_irq(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_automate_irq(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_bind_kernlet(Thread &self, const HelWord *args, HelWord *outs);

} // namespace helsim::kernel
