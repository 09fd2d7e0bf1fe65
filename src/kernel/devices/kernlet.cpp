#include "kernel/devices/kernlet.hpp"

#include <cstring>

#include "kernel/core/kernel.hpp"
#include "kernel/core/universe.hpp"
#include "kernel/devices/event.hpp"
#include "kernel/devices/irq.hpp"
#include "kernel/memory/memory_view.hpp"
#include "sim/host.hpp"

namespace helsim::kernel {

BoundKernlet::BoundKernlet(Kernel &kernel, Ref<KernletObject> kernlet,
		std::vector<KernletBinding> bindings)
: Object{kernel, kKind}, kernlet_{std::move(kernlet)}, bindings_{std::move(bindings)} {}

BoundKernlet::~BoundKernlet() = default;

void BoundKernlet::for_each_reference(const std::function<void(Object &)> &f) {
	f(*kernlet_);
	for (const KernletBinding &b : bindings_) {
		if (b.view)
			f(*b.view);
		if (b.event)
			f(*b.event);
	}
}

KernletResult BoundKernlet::invoke(IrqWork &work) const {
	KernletContext context{*this, work};
	try {
		return kernlet_->fn()(context);
	} catch (...) {
		return KernletResult::none; // helsim/kernlet.hpp: an exception is no answer
	}
}

namespace {

// Copies between a kernlet's buffer and a bound view, page by page through the frames the
// view has present (MMIO windows always have theirs).
bool access_view(MemoryView &view, std::size_t offset, std::byte *buffer, std::size_t size,
		bool write) {
	if (offset > view.size() || size > view.size() - offset)
		return false;
	// First check every page, so that a failed access changes nothing.
	for (std::size_t done = 0; done < size;) {
		std::size_t at = offset + done;
		std::size_t page = at & ~(sim::kPageSize - 1);
		if (!view.peek(page, write ? unsigned{kFetchMutable} : 0u))
			return false;
		done += std::min(size - done, page + sim::kPageSize - at);
	}
	for (std::size_t done = 0; done < size;) {
		std::size_t at = offset + done;
		std::size_t page = at & ~(sim::kPageSize - 1);
		std::size_t n = std::min(size - done, page + sim::kPageSize - at);
		auto frame = view.peek(page, write ? unsigned{kFetchMutable} : 0u);
		if (!frame)
			return false;
		auto *host =
				static_cast<std::byte *>(view.kernel().host().physical_memory().direct(*frame)) +
				(at - page);
		if (write)
			std::memcpy(host, buffer + done, n);
		else
			std::memcpy(buffer + done, host, n);
		done += n;
	}
	return true;
}

} // namespace

} // namespace helsim::kernel

namespace helsim {

using kernel::KernletBinding;

std::size_t KernletContext::parameters() const { return bound_.bindings().size(); }

std::uint32_t KernletContext::offset(std::size_t index) const {
	const auto &b = bound_.bindings();
	return index < b.size() && b[index].type == KernletParameter::offset ? b[index].offset : 0;
}

bool KernletContext::read(std::size_t index, std::size_t offset, void *out,
		std::size_t size) const {
	const auto &b = bound_.bindings();
	if (index >= b.size() || !b[index].view)
		return false;
	return kernel::access_view(*b[index].view, offset, static_cast<std::byte *>(out), size, false);
}

bool KernletContext::write(std::size_t index, std::size_t offset, const void *in,
		std::size_t size) const {
	const auto &b = bound_.bindings();
	if (index >= b.size() || !b[index].view)
		return false;
	return kernel::access_view(*b[index].view, offset,
			static_cast<std::byte *>(const_cast<void *>(in)), size, true);
}

void KernletContext::trigger_bitset(std::size_t index, std::uint32_t bits) {
	const auto &b = bound_.bindings();
	if (index >= b.size() || !b[index].event || !bits)
		return;
	work_.triggers.emplace_back(b[index].event, bits);
}

} // namespace helsim
