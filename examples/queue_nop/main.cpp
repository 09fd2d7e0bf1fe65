// queue_nop: the hel queue through helsim::Dispatcher.
//
// One simulated thread puts a batch of asynchronous nops, two clock waits and one element
// with an opcode that does not exist into the submission queue, hands them all to the kernel
// with a single helDriveQueue, and prints every completion as it arrives. When the short clock
// wait completes, it cancels the long one through its cancellation tag.
#include <cstdint>
#include <cstdio>
#include <span>

#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace {

constexpr int kNops = 8;
constexpr std::uintptr_t kFirstNop = 100; // nop i completes with context kFirstNop + i
constexpr std::uintptr_t kShortClock = 1;
constexpr std::uintptr_t kLongClock = 2;
constexpr std::uintptr_t kBogusOpcode = 3;
constexpr std::uint64_t kLongClockTag = 42;
constexpr std::uintptr_t kSubmitErrorContext = ~std::uintptr_t{0};

const char *error_name(HelError e) {
	switch (e) {
	case kHelErrNone: return "kHelErrNone";
	case kHelErrCancelled: return "kHelErrCancelled";
	case kHelErrIllegalSyscall: return "kHelErrIllegalSyscall";
	case kHelErrBufferTooSmall: return "kHelErrBufferTooSmall";
	case kHelErrQueueTooSmall: return "kHelErrQueueTooSmall";
	default: return "another HelError";
	}
}

std::uint64_t clock_ns() {
	std::uint64_t now = 0;
	helGetClock(&now);
	return now;
}

void run_queue(std::span<const HelHandle>) {
	// Small chunks, so that the kernel moves through several CQ chunks and the dispatcher
	// recycles them.
	helsim::QueueConfig queue_config;
	queue_config.cq_chunks = 2;
	queue_config.sq_chunks = 2;
	queue_config.chunk_size = 128;
	helsim::Dispatcher dispatcher{queue_config};

	std::uint64_t start = clock_ns();
	for (int i = 0; i < kNops; ++i)
		dispatcher.submit(kHelSubmitAsyncNop, kFirstNop + static_cast<std::uintptr_t>(i),
				std::span<const std::byte>{});
	// Not cancellable (tag 0); completes after 1 ms.
	dispatcher.submit(kHelSubmitAwaitClock, kShortClock, HelSqAwaitClock{start + 1'000'000, 0});
	// Would complete after 10 s; cancelled through its tag long before.
	dispatcher.submit(kHelSubmitAwaitClock, kLongClock,
			HelSqAwaitClock{start + 10'000'000'000, kLongClockTag});
	// The kernel rejects this element at submission; the error arrives as a completion with
	// context ~0, because the kernel cannot know which context it belonged to.
	dispatcher.submit(999, kBogusOpcode, std::span<const std::byte>{});
	dispatcher.flush();
	std::printf("submitted %d nops, two clock waits and one bad element; one helDriveQueue\n",
			kNops);

	for (bool long_clock_done = false; !long_clock_done;) {
		auto element = dispatcher.wait();
		if (!element)
			continue; // helAlertQueue; nobody alerts this queue
		std::uintptr_t context = element->context();
		double ms = static_cast<double>(clock_ns() - start) / 1e6;
		if (context >= kFirstNop && context < kFirstNop + kNops) {
			std::printf("%8.3f ms  nop %d completed: %s\n", ms,
					static_cast<int>(context - kFirstNop), error_name(element->error()));
		} else if (context == kShortClock) {
			std::printf("%8.3f ms  short clock wait completed: %s; cancelling tag %llu\n", ms,
					error_name(element->error()), static_cast<unsigned long long>(kLongClockTag));
			// kHelSubmitCancel itself produces no completion.
			dispatcher.submit(kHelSubmitCancel, 0, HelSqCancel{kLongClockTag});
			dispatcher.flush();
		} else if (context == kLongClock) {
			std::printf("%8.3f ms  long clock wait completed: %s\n", ms,
					error_name(element->error()));
			long_clock_done = true;
		} else if (context == kSubmitErrorContext) {
			std::printf("%8.3f ms  submission error (context ~0): %s\n", ms,
					error_name(element->error()));
		}
	}
}

} // namespace

int main() {
	helsim::MachineConfig config;
	config.cpus = 2;
	helsim::Machine machine{config};
	machine.spawn("queue", run_queue);
	helsim::RunReport report = machine.run();
	std::printf("\nrun report:\n%s", report.to_string().c_str());
	return report.stuck || !report.leaks.empty() ? 1 : 0;
}
