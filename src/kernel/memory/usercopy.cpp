#include "kernel/memory/usercopy.hpp"

#include "kernel/core/kernel.hpp"
#include "kernel/memory/space.hpp"
#include "kernel/threads/thread.hpp"
#include "sim/host.hpp"

namespace helsim::kernel {
namespace {

// Host memory outside every space: only in the default mode, and never trusted.
HelError copy_host(AddressSpace &space, std::uintptr_t address, void *buffer, std::size_t size,
		bool to_user, std::size_t &done) {
	if (space.kernel().config().strict_memory ||
			!user_range_ok(reinterpret_cast<void *>(address), size))
		return kHelErrFault;
	auto *user = reinterpret_cast<std::byte *>(address) + done;
	auto *kernel = static_cast<std::byte *>(buffer) + done;
	std::size_t left = to_user ? sim::safe_copy(user, kernel, size - done)
							   : sim::safe_copy(kernel, user, size - done);
	// The cost model: the bytes copied by this call (`done` still holds the earlier ones).
	space.kernel().host().charge_ps(
			(size - left - done) * space.kernel().config().costs.copy_ps_per_byte);
	done = size - left;
	return left ? kHelErrFault : kHelErrNone;
}

HelError copy_self(Thread &self, std::uintptr_t address, void *buffer, std::size_t size,
		bool to_user) {
	if (!size)
		return kHelErrNone;
	AddressSpace &space = self.space();
	if (!space.in_window(address, size)) {
		std::size_t done = 0;
		return copy_host(space, address, buffer, size, to_user, done);
	}
	return space.copy_blocking(address, buffer, size, to_user);
}

} // namespace

HelError copy_user(AddressSpace &space, std::uintptr_t address, void *buffer, std::size_t size,
		bool to_user, std::size_t &done, TouchWaiter *waiter) {
	if (done >= size)
		return kHelErrNone;
	if (!space.in_window(address, size))
		return copy_host(space, address, buffer, size, to_user, done);
	return space.copy(address, buffer, size, to_user, done, waiter);
}

HelError copy_from_user(Thread &self, void *kernel_dst, const void *user_src, std::size_t size) {
	return copy_self(self, reinterpret_cast<std::uintptr_t>(user_src), kernel_dst, size, false);
}

HelError copy_to_user(Thread &self, void *user_dst, const void *kernel_src, std::size_t size) {
	return copy_self(self, reinterpret_cast<std::uintptr_t>(user_dst),
			const_cast<void *>(kernel_src), size, true);
}

} // namespace helsim::kernel
