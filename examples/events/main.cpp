// events: a producer raises bits of a bitset event, a consumer follows them with sequence
// numbers.
//
// The producer (its own universe and CPU) raises one of four "data" bits per step, then a
// "done" bit. The consumer awaits with the last sequence it saw; each completion carries the
// new sequence and every bit raised since, so raises that happen while the consumer is busy
// are merged, never lost. The consumer cares about two of the data bits only (its mask):
// HelSqAwaitEvent has no mask, so it filters the results itself. At the end the consumer's
// sequence must be 1 + the number of raises, and it must have seen every bit of its mask.
// A oneshot event tells the producer that the consumer is running, as a real driver would
// learn that its client is ready.
#include <cstdint>
#include <cstdio>
#include <span>

#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace {

constexpr int kSteps = 200;
constexpr std::uint32_t kDone = 1u << 31;
constexpr std::uint32_t kMask = 0b0101; // the data bits the consumer cares about

struct Outcome {
	std::uint64_t final_sequence = 0;
	std::uint32_t masked_seen = 0;
	int completions = 0;
	int relevant = 0;
	bool error = false;
};

void producer(HelHandle bits, HelHandle ready) {
	helsim::Dispatcher dispatcher;
	// Wait until the consumer runs (sequence 1: the raise; 0 would complete at once).
	dispatcher.submit(kHelSubmitAwaitEvent, 1, HelSqAwaitEvent{ready, 1, 0});
	dispatcher.flush();
	auto element = dispatcher.wait();
	HEL_CHECK(element ? element->error() : kHelErrOther);
	for (int step = 0; step < kSteps; ++step) {
		HEL_CHECK(helsimRaiseBitsetEvent(bits, 1u << (step % 4)));
		if (step % 32 == 0)
			helYield();
	}
	HEL_CHECK(helsimRaiseBitsetEvent(bits, kDone));
}

void consumer(HelHandle bits, HelHandle ready, Outcome &out) {
	helsim::Dispatcher dispatcher;
	HEL_CHECK(helRaiseEvent(ready));
	std::uint64_t sequence = 1; // a new bitset event is at sequence 1
	for (;;) {
		dispatcher.submit(kHelSubmitAwaitEvent, 0, HelSqAwaitEvent{bits, sequence, 0});
		dispatcher.flush();
		auto element = dispatcher.wait();
		if (!element)
			continue;
		auto result = element->as<HelEventResult>();
		if (result.error != kHelErrNone || result.sequence <= sequence) {
			std::printf("consumer: bad completion (error %d, sequence %llu after %llu)\n",
					result.error, static_cast<unsigned long long>(result.sequence),
					static_cast<unsigned long long>(sequence));
			out.error = true;
			return;
		}
		++out.completions;
		// Several raises may have happened since the last await: their bits arrive ORed.
		if (result.bitset & kMask) {
			++out.relevant;
			out.masked_seen |= result.bitset & kMask;
		}
		if (out.completions <= 5 || (result.bitset & kDone))
			std::printf("consumer: sequence %4llu, bits %#010x%s\n",
					static_cast<unsigned long long>(result.sequence), result.bitset,
					result.bitset & kDone ? " (done)" : "");
		sequence = result.sequence;
		if (result.bitset & kDone)
			break;
	}
	out.final_sequence = sequence;
}

} // namespace

int main() {
	helsim::Machine machine; // threads mode, 2 CPUs
	HelHandle bits, ready;
	{
		auto host = machine.attach();
		HEL_CHECK(helCreateBitsetEvent(&bits));
		HEL_CHECK(helCreateOneshotEvent(&ready));
	}
	Outcome outcome;
	machine.spawn("producer", [](std::span<const HelHandle> h) { producer(h[0], h[1]); },
			{bits, ready});
	machine.spawn("consumer", [&](std::span<const HelHandle> h) { consumer(h[0], h[1], outcome); },
			{bits, ready});
	{
		auto host = machine.attach();
		HEL_CHECK(helCloseDescriptor(kHelThisUniverse, bits));
		HEL_CHECK(helCloseDescriptor(kHelThisUniverse, ready));
	}
	auto report = machine.run();

	const std::uint64_t expected = 1 + kSteps + 1; // the initial sequence, the steps, done
	std::printf("%d raises reached the consumer in %d completions (%d with a bit of its mask)\n",
			kSteps + 1, outcome.completions, outcome.relevant);
	bool ok = !report.stuck && !outcome.error && outcome.final_sequence == expected &&
			outcome.masked_seen == kMask && report.operations_pending() == 0;
	if (!ok) {
		std::printf("FAILED: final sequence %llu (expected %llu), mask bits seen %#x\n%s",
				static_cast<unsigned long long>(outcome.final_sequence),
				static_cast<unsigned long long>(expected), outcome.masked_seen,
				report.to_string().c_str());
		return 1;
	}
	std::printf("final sequence %llu: no raise was lost\n",
			static_cast<unsigned long long>(outcome.final_sequence));
	return 0;
}
