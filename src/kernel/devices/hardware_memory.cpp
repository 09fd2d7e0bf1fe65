// helAccessPhysical.
#include "kernel/devices/hardware_memory.hpp"

#include "kernel/core/kernel.hpp"
#include "kernel/core/syscall_args.hpp"
#include "kernel/core/universe.hpp"
#include "kernel/threads/thread.hpp"

namespace helsim::kernel {

HelError access_physical(Thread &self, const PhysicalRange &range, HelWord *outs) {
	auto view = make_object<HardwareMemory>(self.kernel(), range.base, range.size, range.caching);
	return attach_new(self, std::move(view), kMemoryDefaultRights, outs);
}

} // namespace helsim::kernel
