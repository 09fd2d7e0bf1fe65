// Asynchronous operations started by extension calls (helsim::ext::AsyncOperation): the kernel
// side that makes them post exactly once, whoever ends them.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>

#include <helsim/extension_kernel.hpp>
#include <helsim/hel.h>

#include "kernel/core/object.hpp"
#include "kernel/ipc/queue.hpp"
#include "sim/host.hpp"

namespace helsim::kernel {

class Kernel;
class Thread;

// Ended exactly once, by the first of: the extension's complete(), a kHelSubmitCancel naming its
// tag (the queue's cancellation registry decides between the two, as for kHelSubmitAwaitClock),
// or the machine's teardown. Whoever ends it posts its one completion and lets go of the queue,
// so that a handle the extension keeps holds no kernel object. While pending it keeps itself
// alive (self_): the cancellation registry and the kernel's list hold plain pointers.
class ExtensionOperation final : public Cancellable,
								 public std::enable_shared_from_this<ExtensionOperation> {
public:
	// Counts the operation as submitted by `self`; the completion goes to `queue` with
	// `context`. `result_size` bounds what complete() may post; `on_cancel` runs (no lock held)
	// when a cancellation or the teardown ends the operation instead. An operation completed
	// by a plain host thread is the host's outside work (sim::OutsideWork) until it ends.
	static std::shared_ptr<ExtensionOperation> start(Thread &self, IpcQueue &queue,
			std::uintptr_t context, std::uint64_t tag, std::size_t result_size,
			std::function<void()> on_cancel, ext::CompletedBy completed_by);

	ExtensionOperation(Kernel &kernel, IpcQueue &queue, std::uintptr_t context,
			std::size_t result_size, std::function<void()> on_cancel, bool outside);

	// Posts `payload` unless the operation has ended; true if this call ended it. The post of
	// an operation completed from outside goes through the host (sim::Host::deliver).
	bool complete(std::span<const std::byte> payload);
	void cancel() override;
	// Teardown: ends a pending operation with kHelErrCancelled.
	void abandon();
	bool ended() const;
	std::uintptr_t context() const { return context_; }

private:
	// Under mutex_: ends the operation and hands its queue to the caller, who posts.
	Ref<IpcQueue> take();
	bool end_completed(std::span<const std::byte> payload);
	void end_cancelled(Ref<IpcQueue> queue);
	// The outside work (if any) is over: the host forgets it.
	void end_outside_work();
	// Drops `queue`, then takes the operation off the kernel's list and lets it go: the last
	// touch of the kernel.
	void release(Ref<IpcQueue> queue);

	Kernel &kernel_;
	std::uintptr_t context_;
	std::size_t result_size_;
	std::function<void()> on_cancel_;
	const bool outside_; // ext::CompletedBy::host_thread: outside_work_ is expected
	sim::OutsideWork outside_work_;
	mutable std::mutex mutex_;
	Ref<IpcQueue> queue_; // null once ended
	std::shared_ptr<ExtensionOperation> self_;
	std::uint64_t sequence_ = 0; // its key in ExtensionOperations
	friend class ExtensionOperations;
};

// The kernel's pending extension operations, for the teardown.
class ExtensionOperations {
public:
	void add(ExtensionOperation &op);
	void remove(ExtensionOperation &op);
	// Ends every pending operation with kHelErrCancelled (Kernel::abandon_objects), and waits
	// for those that another thread is ending to be done with the kernel.
	void abandon_all();

private:
	std::mutex mutex_;
	// Set by the teardown: from then on the last remove() wakes it, through drained_ (a word
	// for HostOperations::wait_word), so that operations ending meanwhile pay no wake.
	bool draining_ = false;
	std::atomic<std::uint32_t> drained_{0};
	// By start order, so that the teardown posts in the same order on every run of a seed.
	std::map<std::uint64_t, ExtensionOperation *> pending_;
	std::uint64_t next_sequence_ = 0;
};

} // namespace helsim::kernel
