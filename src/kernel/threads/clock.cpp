#include "kernel/threads/clock.hpp"

#include "kernel/core/kernel.hpp"
#include "kernel/core/syscall_args.hpp"
#include "kernel/ipc/queue.hpp"
#include "kernel/threads/thread.hpp"

namespace helsim::kernel {
namespace {

// Owned by whoever completes it: the timer when it fires, or cancel() when the registry
// hands it over. The registry decides (unregister_cancellable), so exactly one of them wins.
class ClockWait final : public sim::Timer, public Cancellable {
public:
	ClockWait(Kernel &kernel, IpcQueue &queue, std::uintptr_t context)
	: kernel_{kernel}, queue_{&queue}, context_{context} {}

	void fire() override {
		if (cancellation_tag && !queue_->unregister_cancellable(*this))
			return; // a cancellation took us; it completes and frees us
		queue_->post_simple(kHelErrNone, context_);
		delete this;
	}

	void cancel() override {
		// Waits out a concurrent fire(), which backs off because we are no longer registered.
		kernel_.host().disarm(*this);
		queue_->post_simple(kHelErrCancelled, context_);
		delete this;
	}

	void abandon() override {
		if (cancellation_tag)
			queue_->unregister_cancellable(*this);
		delete this;
	}

private:
	Kernel &kernel_;
	Ref<IpcQueue> queue_;
	std::uintptr_t context_;
};

} // namespace

void submit_await_clock(Thread &self, IpcQueue &queue, std::uint64_t deadline, std::uint64_t tag,
		std::uintptr_t context) {
	Kernel &kernel = self.kernel();
	if (deadline <= kernel.host().now()) {
		self.note_submitted();
		queue.post_simple(kHelErrNone, context);
		return;
	}
	// Allocated before the operation counts as submitted (see without_allocation_exceptions).
	auto *wait = new ClockWait{kernel, queue, context};
	self.note_submitted();
	wait->deadline = deadline;
	wait->cancellation_tag = tag;
	// Register before arming, or a fire() could find itself unregistered and back off. A
	// kHelSubmitCancel cannot run in between: SQ elements of a queue are consumed one at a
	// time under its SQ lock, and this runs inside that.
	if (tag)
		queue.register_cancellable(*wait);
	kernel.host().arm(*wait);
}

namespace {

HelError sys_get_clock(Thread &self, HelWord *outs) {
	outs[0] = self.kernel().host().now();
	return kHelErrNone;
}

HelError sq_await_clock(Thread &self, IpcQueue &queue, std::uintptr_t context,
		const HelSqAwaitClock &request) {
	submit_await_clock(self, queue, request.counter, request.cancellationTag, context);
	return kHelErrNone;
}

} // namespace

void register_clock_calls(CallRegistry &calls) {
	calls.add_syscall(kHelCallGetClock, syscall_row<sys_get_clock>("helGetClock", "> counter"));
	calls.add_sq_opcode(kHelSubmitAwaitClock,
			sq_row<sq_await_clock>("AwaitClock", sizeof(HelSimpleResult)));
}

} // namespace helsim::kernel
