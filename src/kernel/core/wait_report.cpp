#include "kernel/core/wait_report.hpp"

#include <algorithm>
#include <cstddef>
#include <limits>
#include <string_view>
#include <vector>

#include <fmt/core.h>

#include "kernel/core/kernel.hpp"
#include "kernel/core/universe.hpp"
#include "kernel/ipc/queue.hpp"
#include "kernel/threads/thread.hpp"

namespace helsim::kernel {
namespace {

// A line stays readable when thousands of operations wait: the rest is counted.
constexpr std::size_t kMaxListed = 8;

struct Listed {
	const char *action;
	Ref<Object> on;
	HelHandle handle = kHelNullHandle; // of `on` in the waiting thread's universe
};

// Operations known to wait inside an object: stream items queued on a lane, the pager's
// ManageMemory and WritebackFence (Object::for_each_pending). An operation that has paired
// already and waits for a page (a copy into managed memory) is not listed.
std::vector<Listed> pending_on(Kernel &kernel, const IpcQueue &queue, Universe &universe) {
	std::vector<Listed> listed;
	for (const Ref<Object> &object : kernel.live_object_refs())
		object->for_each_pending([&](const PendingOperation &op) {
			if (op.queue == &queue) // the object's lock is held: take `on` now
				listed.push_back({op.action, Ref<Object>{op.on}});
		});
	for (Listed &l : listed)
		if (l.on)
			l.handle = universe.handle_of(*l.on);
	// By handle, those without one last; objects keep their queue order.
	auto key = [](const Listed &l) {
		return l.handle == kHelNullHandle ? std::numeric_limits<HelHandle>::max() : l.handle;
	};
	std::stable_sort(listed.begin(), listed.end(),
			[&](const Listed &a, const Listed &b) { return key(a) < key(b); });
	return listed;
}

std::string describe_operation(const Listed &l) {
	if (!l.on)
		return l.action;
	const char *kind = l.on->kind_name();
	if (l.handle == kHelNullHandle)
		return fmt::format("{} on a {} without a handle here", l.action, kind);
	return fmt::format("{} on {} handle {}", l.action, kind, l.handle);
}

std::string describe_queue_wait(Thread &thread, HelHandle handle) {
	std::string out = fmt::format("{} {}", kDriveQueueWait, handle);
	Ref<Universe> universe = thread.universe_ref();
	if (!universe)
		return out;
	auto queue = universe->resolve<IpcQueue>(handle, 0);
	if (!queue)
		return out + "; that handle names no queue now";
	std::vector<Listed> listed = pending_on(thread.kernel(), *queue.object, *universe);
	// Completed, but not delivered until user space supplies a CQ chunk and announces it.
	std::size_t waiting = queue.object->waiting_completions();
	if (listed.empty() && !waiting)
		return out + "; nothing pending there";
	if (!listed.empty()) {
		out += "; pending there: ";
		for (std::size_t i = 0; i < listed.size() && i < kMaxListed; ++i)
			out += (i ? ", " : "") + describe_operation(listed[i]);
		if (listed.size() > kMaxListed)
			out += fmt::format(" and {} more", listed.size() - kMaxListed);
	}
	if (waiting)
		out += fmt::format("; {} completion{} wait for a CQ chunk announced with "
						   "kHelKernelNotifySupplyCqChunks",
				waiting, waiting == 1 ? "" : "s");
	return out;
}

} // namespace

std::string describe_wait(Thread &thread) {
	sim::WaitReason why = thread.wait_reason();
	if (!why.what)
		return "nothing (runnable)";
	if (why.what == kDriveQueueWait)
		return describe_queue_wait(thread, static_cast<HelHandle>(why.address));
	if (why.what == kInterruptedWait) {
		// The address field carries the observation the thread stopped with.
		auto observation = static_cast<std::uint32_t>(why.address);
		if (observation >= static_cast<std::uint32_t>(kHelObserveSuperCall))
			return fmt::format(
					"stopped at supercall {} (kHelCallSuper + {}), waiting for helResume",
					observation - kHelObserveSuperCall, observation - kHelObserveSuperCall);
		if (observation == kHelObservePanic)
			return "stopped at helPanic, waiting for helResume";
		return "interrupted, waiting for helResume";
	}
	// Handles print in decimal (as hel returns them), addresses in hex.
	if (std::string_view{why.what}.ends_with("handle"))
		return fmt::format("{} {}", why.what, why.address);
	return fmt::format("{} {:#x}", why.what, why.address);
}

} // namespace helsim::kernel
