#include "kernel/core/async_operation.hpp"

#include <stdexcept>
#include <utility>
#include <vector>

#include "kernel/core/kernel.hpp"
#include "kernel/threads/thread.hpp"
#include "sim/host.hpp"

namespace helsim::kernel {

std::shared_ptr<ExtensionOperation> ExtensionOperation::start(Thread &self, IpcQueue &queue,
		std::uintptr_t context, std::uint64_t tag, std::size_t result_size,
		std::function<void()> on_cancel, ext::CompletedBy completed_by) {
	Kernel &kernel = self.kernel();
	// Everything that allocates comes before the operation counts as submitted
	// (see without_allocation_exceptions).
	auto op = std::make_shared<ExtensionOperation>(kernel, queue, context, result_size,
			std::move(on_cancel), completed_by == ext::CompletedBy::host_thread);
	op->cancellation_tag = tag;
	kernel.extension_operations().add(*op);
	op->self_ = op;
	if (op->outside_)
		kernel.host().expect(op->outside_work_);
	// The same flow from submission to completion that built-in operations start.
	if (self.tracer()) [[unlikely]]
		self.set_trace_key(&queue, context);
	self.note_submitted();
	// A kHelSubmitCancel cannot run before this on the queue the call itself submits through,
	// and one from another thread that runs first simply finds nothing to cancel yet.
	if (tag)
		queue.register_cancellable(*op);
	return op;
}

ExtensionOperation::ExtensionOperation(Kernel &kernel, IpcQueue &queue, std::uintptr_t context,
		std::size_t result_size, std::function<void()> on_cancel, bool outside)
: kernel_{kernel}, context_{context}, result_size_{result_size},
  on_cancel_{std::move(on_cancel)}, outside_{outside}, queue_{&queue} {}

bool ExtensionOperation::ended() const {
	std::lock_guard lock{mutex_};
	return !queue_;
}

Ref<IpcQueue> ExtensionOperation::take() { return std::move(queue_); }

bool ExtensionOperation::complete(std::span<const std::byte> payload) {
	if (payload.size() < sizeof(HelSimpleResult) || payload.size() > result_size_)
		throw std::invalid_argument(
				"helsim: AsyncOperation::complete: the payload must hold a HelSimpleResult and "
				"fit the result size given to Caller::start");
	if (!outside_)
		return end_completed(payload);
	bool ended = false;
	kernel_.host().deliver(outside_work_, [&] { ended = end_completed(payload); });
	return ended;
}

bool ExtensionOperation::end_completed(std::span<const std::byte> payload) {
	Ref<IpcQueue> queue;
	{
		std::lock_guard lock{mutex_};
		// A registered operation belongs to the cancellation registry's decision: if a cancel
		// took it out, that cancel ends it.
		if (!queue_ || (cancellation_tag && !queue_->unregister_cancellable(*this)))
			return false;
		queue = take();
	}
	QueueSource source{payload.data(), payload.size()};
	queue->post({&source, 1}, context_, true);
	// After the post, which may have woken a thread: in threads mode the machine's activity
	// never drops to zero in between.
	end_outside_work();
	release(std::move(queue));
	return true;
}

void ExtensionOperation::cancel() {
	// Reached only through the registry, which has already unregistered the operation, so a
	// complete() or an abandon() backs off: this one ends it.
	Ref<IpcQueue> queue;
	{
		std::lock_guard lock{mutex_};
		queue = take();
	}
	if (queue)
		end_cancelled(std::move(queue));
}

void ExtensionOperation::abandon() {
	Ref<IpcQueue> queue;
	{
		std::lock_guard lock{mutex_};
		if (!queue_ || (cancellation_tag && !queue_->unregister_cancellable(*this)))
			return;
		queue = take();
	}
	end_cancelled(std::move(queue));
}

void ExtensionOperation::end_cancelled(Ref<IpcQueue> queue) {
	// Before the hook, which may wait for the host thread that completes the operation: that
	// thread, blocked delivering its completion (deterministic mode), returns now. A
	// cancellation runs on a simulated thread, or the teardown on the machine's: the activity
	// does not drop to zero meanwhile.
	end_outside_work();
	// The extension stops its own work first (a worker, a timer), with no lock held: the hook
	// may well call complete(), which then finds the operation ended.
	if (on_cancel_)
		std::exchange(on_cancel_, {})();
	queue->post_simple(kHelErrCancelled, context_);
	release(std::move(queue));
}

void ExtensionOperation::end_outside_work() {
	if (outside_)
		kernel_.host().forget(outside_work_);
}

void ExtensionOperation::release(Ref<IpcQueue> queue) {
	// The queue's reference goes first: once the operation is off the kernel's list, the
	// teardown may destroy the kernel (abandon_all), so nothing here touches it after remove().
	queue = nullptr;
	kernel_.extension_operations().remove(*this);
	// The last reference may be this one: nothing of the object is touched after the reset.
	auto keep = std::move(self_);
}

void ExtensionOperations::add(ExtensionOperation &op) {
	std::lock_guard lock{mutex_};
	op.sequence_ = next_sequence_++;
	pending_.emplace(op.sequence_, &op);
}

void ExtensionOperations::remove(ExtensionOperation &op) {
	// The wake comes under the lock, and the teardown checks the list under it too: when it
	// sees the list empty, the last remover is done with the kernel but for its unlock.
	std::lock_guard lock{mutex_};
	pending_.erase(op.sequence_);
	if (draining_ && pending_.empty()) [[unlikely]] {
		drained_.store(1, std::memory_order_release);
		sim::host_operations().wake_word(drained_);
	}
}

void ExtensionOperations::abandon_all() {
	std::vector<std::shared_ptr<ExtensionOperation>> pending;
	{
		// Listed means not yet released: self_ still holds the operation.
		std::lock_guard lock{mutex_};
		draining_ = true;
		for (auto &entry : pending_)
			pending.push_back(entry.second->shared_from_this());
	}
	for (auto &op : pending)
		op->abandon();
	// An operation that a complete() or a cancellation on another thread (a plain host thread,
	// a timer) ended first stays listed until that thread has posted its completion and let
	// go of the kernel: the kernel must not go away under it.
	for (;;) {
		{
			std::lock_guard lock{mutex_};
			if (pending_.empty())
				return;
		}
		sim::host_operations().wait_word(drained_, 0);
	}
}

} // namespace helsim::kernel
