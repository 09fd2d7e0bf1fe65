// SQ LockMemoryView: touches a range of a view for writing (waiting for a pager if it must),
// pins it, and hands out a MemoryViewLock handle.
#include "kernel/memory/memory_lock.hpp"

#include <memory>

#include "kernel/core/allocation_errors.hpp"
#include "kernel/core/kernel.hpp"
#include "kernel/core/syscall_args.hpp"
#include "kernel/ipc/queue.hpp"
#include "kernel/memory/memory_syscalls.hpp"

namespace helsim::kernel {
namespace {

constexpr std::size_t kPage = sim::kPageSize;

// Owned by itself until it completes: pages may arrive on whichever thread a pager runs.
class LockOp final : public TouchWaiter {
public:
	LockOp(Ref<MemoryView> view, std::size_t offset, std::size_t size, IpcQueue &queue,
			std::uintptr_t context, std::shared_ptr<UniverseAnchor> universe)
	: view_{std::move(view)}, offset_{offset}, size_{size}, queue_{&queue}, context_{context},
	  universe_{std::move(universe)}, first_{offset & ~(kPage - 1)},
	  end_{size ? (offset + size + kPage - 1) & ~(kPage - 1) : first_}, next_{first_} {}

	void run() {
		for (;;) {
			// (1) Make every page present for writing, as thor's touchFullRange does.
			while (next_ < end_) {
				if (view_->peek(next_, kFetchMutable)) {
					next_ += kPage;
					continue;
				}
				// On success, peek again: an eviction may have come in between.
				HelError e = view_->touch(next_, kFetchMutable, *this);
				if (e == kTouchPending)
					return; // touched() resumes at next_
				if (e != kHelErrNone)
					return finish(e);
			}
			// (2) Pin, then (3) check that nothing was evicted before the pin took hold;
			// if something was, let go and touch from there again.
			view_->pin(offset_, size_);
			next_ = first_;
			while (next_ < end_ && view_->peek(next_, kFetchMutable))
				next_ += kPage;
			if (next_ >= end_)
				return attach();
			view_->unpin(offset_, size_);
		}
	}

	void touched(HelError error) override {
		if (error != kHelErrNone)
			return finish(error);
		run();
	}

private:
	void attach() {
		// The lock is made after the operation was submitted: without the memory for it, the
		// pin goes and the operation fails, as thor's failed allocation of the lock would.
		Ref<MemoryViewLock> lock;
		if (HelError e = without_allocation_exceptions([&] {
				lock = make_object<MemoryViewLock>(view_->kernel(), view_, offset_, size_);
				return kHelErrNone;
			});
				e != kHelErrNone) {
			view_->unpin(offset_, size_);
			return finish(e);
		}
		HelHandleResult result{kHelErrNone, 0, kHelNullHandle};
		Ref<Universe> universe = universe_->lock();
		if (!universe)
			result.error = kHelErrThreadTerminated; // the submitter's universe is gone
		else
			result.error = universe->attach(std::move(lock), kHelRightNull, result.handle);
		// A lock that found no home unpins as it dies here.
		post(result);
	}

	void finish(HelError error) { post(HelHandleResult{error, 0, kHelNullHandle}); }

	void post(HelHandleResult result) {
		QueueSource source{&result, sizeof(result)};
		queue_->post({&source, 1}, context_, true);
		delete this;
	}

	Ref<MemoryView> view_;
	std::size_t offset_, size_;
	Ref<IpcQueue> queue_;
	std::uintptr_t context_;
	std::shared_ptr<UniverseAnchor> universe_;
	const std::size_t first_, end_; // the pages of the range
	std::size_t next_;              // the page to make present next
};

} // namespace

HelError sq_lock_memory_view(Thread &self, IpcQueue &queue, std::uintptr_t context,
		const HelSqLockMemoryView &request, Lookup<MemoryView> &view) {
	std::size_t size = view.object->size();
	if (request.offset > size || request.size > size - request.offset) {
		// thor's lockRange() refuses the range; hel.cpp reports that as a fault.
		self.note_submitted();
		HelHandleResult result{kHelErrFault, 0, kHelNullHandle};
		QueueSource source{&result, sizeof(result)};
		queue.post({&source, 1}, context, true);
		return kHelErrNone;
	}
	// Allocated before the operation counts as submitted (see without_allocation_exceptions).
	auto *op = new LockOp{std::move(view.object), request.offset, request.size, queue, context,
			self.universe().anchor()};
	self.note_submitted();
	op->run();
	return kHelErrNone;
}

} // namespace helsim::kernel
