// A copy between two places that may each need faults resolved — kernel memory, a range of
// an address space, or a range of a memory view. Whatever needs no fault is copied directly,
// once, from one side to the other; the rest goes in page-sized steps through a bounce
// buffer. A step that waits for a pager resumes when the page arrives, on whichever thread
// provided it, so the copy never blocks a thread. Streams use it for transfers that cannot
// complete at once, the SQ Read/WriteMemory operations for everything.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "kernel/memory/memory_view.hpp"

namespace helsim::kernel {

class AddressSpace;

// One side of a copy. Exactly one of space, view or kernel is set.
struct CopyEndpoint {
	Ref<AddressSpace> space;
	Ref<MemoryView> view;
	std::byte *kernel = nullptr;
	std::uintptr_t address = 0; // in the space, or the offset in the view
};

// From `copied` on, as far as no fault, wait or memory view is in the way: one copy from source
// to target, page by page for memory of a space (under its copy lock), in one fault-safe copy
// for host memory outside every space. Returns how far the copy got (`length` when done).
std::size_t copy_directly(const CopyEndpoint &source, const CopyEndpoint &target,
		std::size_t length, std::size_t copied);

class BounceCopy : public TouchWaiter {
public:
	// Runs as far as it can; done() follows, maybe later, maybe on another thread.
	void start() { run(); }
	void touched(HelError error) override;

protected:
	// `copied`: the bytes a caller's copy_directly() delivered already.
	BounceCopy(CopyEndpoint source, CopyEndpoint target, std::size_t length, std::size_t copied = 0)
	: source_{std::move(source)}, target_{std::move(target)}, length_{length}, copied_{copied} {}
	~BounceCopy() = default;

	// The copy ended: kHelErrNone, or the error of the side that failed. Called exactly
	// once; the object may delete itself here.
	virtual void done(HelError error, bool source_failed) = 0;

private:
	void run();

	CopyEndpoint source_;
	CopyEndpoint target_;
	std::size_t length_;
	std::size_t copied_;      // bytes delivered
	std::size_t step_ = 0;    // progress of the current page-sized step
	bool have_chunk_ = false; // the bounce buffer holds the next chunk
	// Allocated when a copy first needs it: most copies never fault, and a page inside every
	// copy object made each large send allocate 4 KiB.
	std::unique_ptr<std::byte[]> bounce_;
};

} // namespace helsim::kernel
