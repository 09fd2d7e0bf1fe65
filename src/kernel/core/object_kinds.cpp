#include "kernel/core/object_kinds.hpp"

#include <stdexcept>

#include <fmt/core.h>

#include "kernel/core/universe.hpp"
#include "kernel/devices/dma_space.hpp"
#include "kernel/devices/event.hpp"
#include "kernel/devices/io_space.hpp"
#include "kernel/devices/irq.hpp"
#include "kernel/devices/kernlet.hpp"
#include "kernel/ipc/queue.hpp"
#include "kernel/ipc/stream.hpp"
#include "kernel/memory/memory_slice.hpp"
#include "kernel/memory/memory_view.hpp"
#include "kernel/memory/space.hpp"
#include "kernel/memory/swap_space.hpp"
#include "kernel/threads/thread.hpp"

namespace helsim::kernel {

ObjectKind ObjectKinds::add(KindRow row) {
	if (row.name.empty())
		throw std::invalid_argument("helsim: an object kind needs a name");
	if (row.rights & ~(kRightsMask | kKindRightsMask))
		throw std::invalid_argument(fmt::format(
				"helsim: object kind \"{}\": rights {:#x} use bits that are neither hel's "
				"(kHelRight*) nor a kind's own ({:#x})",
				row.name, row.rights, kKindRightsMask));
	if (row.default_rights & ~row.rights)
		throw std::invalid_argument(fmt::format(
				"helsim: object kind \"{}\": default rights {:#x} are not among its rights {:#x}",
				row.name, row.default_rights, row.rights));
	std::lock_guard lock{mutex_};
	std::size_t n = size_.load(std::memory_order_relaxed);
	for (std::size_t i = 0; i < n; ++i)
		if (rows_[i].name == row.name)
			throw std::invalid_argument(
					fmt::format("helsim: object kind \"{}\" is already registered", row.name));
	if (n == kMaxObjectKinds)
		throw std::length_error(fmt::format("helsim: object kind \"{}\": all {} kinds are taken",
				row.name, kMaxObjectKinds));
	rows_[n] = std::move(row);
	size_.store(n + 1, std::memory_order_release);
	return static_cast<ObjectKind>(n);
}

namespace {

struct Builtin {
	ObjectKind kind;
	KindRow row;
};

} // namespace

void register_builtin_kinds(ObjectKinds &kinds) {
	// A memory view's row holds the rights of plain allocated memory; the other memory objects
	// (copy-on-write, indirect) are created with their own.
	const Builtin builtins[] = {
			{ObjectKind::universe,
					{"universe", kHelDescUniverse, kRightsMask, kUniverseDefaultRights,
							Teardown::close_handles}},
			{ObjectKind::queue, {"queue", kHelDescQueue, kRightsMask, kQueueDefaultRights}},
			{ObjectKind::memory_view,
					{"memory", kHelDescMemoryView, kRightsMask, kMemoryDefaultRights}},
			{ObjectKind::memory_slice,
					{"memory slice", kHelDescMemorySlice, kRightsMask, kSliceDefaultRights}},
			{ObjectKind::memory_view_lock,
					{"memory lock", kHelDescMemoryViewLock, kRightsMask, kHelRightNull}},
			{ObjectKind::swap_space,
					{"swap space", kHelDescSwapSpace, kRightsMask, kSwapSpaceDefaultRights}},
			{ObjectKind::address_space,
					{"address space", kHelDescAddressSpace, kRightsMask, kSpaceDefaultRights}},
			{ObjectKind::thread, {"thread", kHelDescThread, kRightsMask, kThreadDefaultRights}},
			{ObjectKind::lane, {"lane", kHelDescLane, kRightsMask, kLaneDefaultRights}},
			{ObjectKind::token, {"token", kHelDescToken, kRightsMask, kHelRightNull}},
			{ObjectKind::oneshot_event,
					{"oneshot event", kHelDescOneshotEvent, kRightsMask, kEventDefaultRights}},
			{ObjectKind::bitset_event,
					{"bitset event", kHelDescBitsetEvent, kRightsMask, kEventDefaultRights}},
			{ObjectKind::irq_pin, {"irq pin", kHelDescIrqPin, kRightsMask, kIrqPinDefaultRights}},
			{ObjectKind::irq, {"irq", kHelDescIrq, kRightsMask, kIrqDefaultRights}},
			{ObjectKind::kernlet_object,
					{"kernlet", kHelDescKernletObject, kRightsMask, kKernletDefaultRights}},
			{ObjectKind::bound_kernlet,
					{"bound kernlet", kHelDescBoundKernlet, kRightsMask,
							kBoundKernletDefaultRights}},
			{ObjectKind::dma_space,
					{"dma space", kHelDescDmaSpace, kRightsMask, kDmaSpaceDefaultRights}},
			{ObjectKind::io_space, {"io space", kHelDescIo, kRightsMask, kIoDefaultRights}},
			// No descriptor names a stream: handles name its lanes.
			{ObjectKind::stream, {"stream", kHelDescNone, kRightsMask, kHelRightNull}},
	};
	static_assert(std::size(builtins) == kBuiltinKinds);
	for (const Builtin &b : builtins)
		if (kinds.add(b.row) != b.kind)
			throw std::logic_error("helsim: built-in object kinds registered out of order");
}

} // namespace helsim::kernel
