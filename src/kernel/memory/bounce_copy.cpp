#include "kernel/memory/bounce_copy.hpp"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <new>
#include <shared_mutex>

#include "kernel/core/kernel.hpp"
#include "kernel/memory/space.hpp"
#include "kernel/memory/usercopy.hpp"
#include "sim/host.hpp"

namespace helsim::kernel {
namespace {

HelError access(CopyEndpoint &end, std::size_t offset, std::byte *buffer, std::size_t size,
		bool to_end, std::size_t &step, TouchWaiter &waiter) {
	if (end.kernel) {
		if (to_end)
			std::memcpy(end.kernel + offset, buffer, size);
		else
			std::memcpy(buffer, end.kernel + offset, size);
		step = size;
		return kHelErrNone;
	}
	if (end.space)
		return copy_user(*end.space, end.address + offset, buffer, size, to_end, step, &waiter);
	return copy_view(*end.view, end.address + offset, buffer, size, to_end, step, waiter);
}

// Where the next bytes of one side of a direct copy are.
struct Place {
	std::byte *at = nullptr;
	std::size_t length = 0; // contiguous from `at`
	bool host = false;      // host memory outside every space: untrusted, copied fault-safe
};

// The space whose copy lock a direct step of `end` needs, if any.
AddressSpace *locked_space(const CopyEndpoint &end, std::size_t offset, std::size_t want) {
	if (!end.space || !end.space->in_window(end.address + offset, want))
		return nullptr;
	return end.space.get();
}

// Where `end`'s bytes from `offset` on are, up to `want` of them, with no fault or wait. False
// if they are not at hand (a view, a page that is not present, memory copy_user refuses): the
// bounce path then takes over, and reports the error if there is one. The rules for host
// memory are copy_user's.
bool locate(const CopyEndpoint &end, std::size_t offset, std::size_t want, bool write, Place &out) {
	if (end.kernel) {
		out = {end.kernel + offset, want, false};
		return true;
	}
	if (!end.space)
		return false;
	AddressSpace &space = *end.space;
	std::uintptr_t address = end.address + offset;
	if (!space.in_window(address, want)) {
		if (space.kernel().config().strict_memory ||
				!user_range_ok(reinterpret_cast<void *>(address), want))
			return false;
		out = {reinterpret_cast<std::byte *>(address), want, true};
		return true;
	}
	std::byte *frame = space.present_frame(address, write);
	if (!frame)
		return false;
	space.kernel().host().charge_ps(space.kernel().config().costs.page_walk_ns * 1000);
	out = {frame, std::min(want, sim::kPageSize - (address & (sim::kPageSize - 1))), false};
	return true;
}

Kernel *kernel_of(const CopyEndpoint &end) {
	if (end.space)
		return &end.space->kernel();
	if (end.view)
		return &end.view->kernel();
	return nullptr;
}

} // namespace

std::size_t copy_directly(const CopyEndpoint &source, const CopyEndpoint &target,
		std::size_t length, std::size_t copied) {
	Kernel *kernel = kernel_of(source);
	if (!kernel)
		kernel = kernel_of(target);
	while (copied < length) {
		std::size_t want = length - copied;
		// Both copy locks, in address order: two transfers in opposite directions between
		// the same spaces cannot then wait for each other.
		AddressSpace *a = locked_space(source, copied, want);
		AddressSpace *b = locked_space(target, copied, want);
		if (a && b && b < a)
			std::swap(a, b);
		std::shared_lock<std::shared_mutex> first, second;
		if (a)
			first = std::shared_lock{a->copy_lock()};
		if (b && b != a)
			second = std::shared_lock{b->copy_lock()};
		Place from, to;
		if (!locate(source, copied, want, false, from) || !locate(target, copied, want, true, to))
			return copied;
		std::size_t n = std::min(from.length, to.length);
		std::size_t left = 0;
		if (from.host || to.host)
			left = sim::safe_copy(to.at, from.at, n); // a fault: the bounce path finds whose
		else
			user_memmove(to.at, from.at, n);
		if (kernel)
			kernel->host().charge_ps((n - left) * kernel->config().costs.copy_ps_per_byte);
		copied += n - left;
		if (left)
			return copied;
	}
	return copied;
}

void BounceCopy::touched(HelError error) {
	if (error != kHelErrNone)
		done(error, !have_chunk_);
	else
		run();
}

void BounceCopy::run() {
	if (!have_chunk_ && step_ == 0)
		copied_ = copy_directly(source_, target_, length_, copied_);
	if (copied_ < length_ && !bounce_) {
		bounce_.reset(new (std::nothrow) std::byte[sim::kPageSize]);
		if (!bounce_)
			return done(kHelErrNoMemory, false);
	}
	while (copied_ < length_) {
		std::size_t chunk = std::min(length_ - copied_, sim::kPageSize);
		bool reading = !have_chunk_;
		CopyEndpoint &end = reading ? source_ : target_;
		HelError e = access(end, copied_, bounce_.get(), chunk, !reading, step_, *this);
		if (e == kTouchPending)
			return; // touched() resumes
		step_ = 0;
		if (e != kHelErrNone)
			return done(e, reading);
		if (reading) {
			have_chunk_ = true;
		} else {
			have_chunk_ = false;
			copied_ += chunk;
		}
	}
	done(kHelErrNone, false);
}

} // namespace helsim::kernel
