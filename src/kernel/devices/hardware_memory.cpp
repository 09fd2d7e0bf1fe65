// helAccessPhysical.
#include "kernel/devices/hardware_memory.hpp"

#include "kernel/core/kernel.hpp"
#include "kernel/core/syscall_args.hpp"
#include "kernel/threads/thread.hpp"
#include "kernel/core/token.hpp"
#include "kernel/core/universe.hpp"

namespace helsim::kernel {

HelError sys_access_physical(Thread &self, const HelWord *args, HelWord *outs) {
	// The token first: without it a caller learns nothing about the machine's memory.
	if (HelError e = check_hardware_token(self, arg<HelHandle>(args, 0)); e != kHelErrNone)
		return e;
	auto physical = arg<std::uint64_t>(args, 1);
	auto size = arg<std::size_t>(args, 2);
	auto caching = arg<std::uint32_t>(args, 3);
	if (!size || !page_aligned(physical) || !page_aligned(size))
		return kHelErrIllegalArgs;
	if (caching > kHelCachingMmioNonPosted)
		return kHelErrIllegalArgs;
	// Every range is allowed, RAM that belongs to others included (as thor allows any range
	// to the token's holder), as long as the machine has memory there.
	std::size_t memory = self.kernel().host().physical_memory().size();
	if (physical > memory || size > memory - physical)
		return kHelErrOutOfBounds;
	auto view = make_object<HardwareMemory>(self.kernel(), physical, size, caching);
	return attach_new(self, std::move(view), kMemoryDefaultRights, outs);
}

} // namespace helsim::kernel
