// Tests of events (src/kernel/devices/event.cpp, event_syscalls.cpp): helCreateOneshotEvent,
// helCreateBitsetEvent, helRaiseEvent (and helsimRaiseBitsetEvent), kHelSubmitAwaitEvent and
// the legacy helSubmitAwaitEvent, with thor's sequence rules, cancellation by tag, the end of
// an event with awaits still waiting, a threads-mode stress and a seeded deterministic run.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "../../support.hpp"
#include "../threads/thread_support.hpp"
#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>
#include <helsim/testing.hpp>

namespace {

using helsim::test::expect_clean;
using helsim::test::info_of;
using helsim::test::narrowed;

constexpr std::uintptr_t kSubmitError = ~std::uintptr_t{0};

helsim::MachineConfig config(unsigned cpus) {
	helsim::MachineConfig c;
	c.cpus = cpus;
	c.physical_memory = std::size_t{64} << 20;
	return c;
}

HelHandle oneshot() {
	HelHandle h = kHelNullHandle;
	EXPECT_EQ(helCreateOneshotEvent(&h), kHelErrNone);
	return h;
}

HelHandle bitset() {
	HelHandle h = kHelNullHandle;
	EXPECT_EQ(helCreateBitsetEvent(&h), kHelErrNone);
	return h;
}

void await(helsim::Dispatcher &d, std::uintptr_t context, HelHandle event, std::uint64_t sequence,
		std::uint64_t tag = 0) {
	d.submit(kHelSubmitAwaitEvent, context, HelSqAwaitEvent{event, sequence, tag});
}

void cancel(helsim::Dispatcher &d, std::uint64_t tag) {
	d.submit(kHelSubmitCancel, 0, HelSqCancel{tag});
}

struct Seen {
	std::uintptr_t context = 0;
	HelEventResult result{};
};

Seen take(helsim::Dispatcher &d) {
	auto e = d.wait();
	EXPECT_TRUE(e);
	if (!e)
		return {};
	EXPECT_EQ(e->payload().size(), sizeof(HelEventResult));
	return {e->context(), e->as<HelEventResult>()};
}

// The next completion, which must be `context` with (error, bitset, sequence).
void expect_next(helsim::Dispatcher &d, std::uintptr_t context, HelError error, std::uint32_t bits,
		std::uint64_t sequence) {
	Seen s = take(d);
	EXPECT_EQ(s.context, context);
	EXPECT_EQ(s.result.error, error) << "context " << context;
	EXPECT_EQ(s.result.bitset, bits) << "context " << context;
	EXPECT_EQ(s.result.sequence, sequence) << "context " << context;
}

// Flushes and checks that nothing has completed (a waiting await).
void expect_nothing(helsim::Dispatcher &d) {
	d.flush();
	auto e = d.poll();
	EXPECT_FALSE(e) << "unexpected completion with context " << (e ? e->context() : 0);
}

// Runs `body` in a fiber (a lost completion shows as a stuck machine, not a hung test) and
// expects a clean end; `refused` submissions were answered with context ~0 elements.
void run_body(const std::function<void()> &body, std::uint64_t refused = 0) {
	helsim::Machine machine{config(2)};
	machine.spawn("body", [&](std::span<const HelHandle>) { body(); });
	auto report = machine.run();
	expect_clean(report);
	EXPECT_EQ(report.counters.completions_posted, report.counters.operations_completed + refused)
			<< "nothing completed twice";
}

} // namespace

// ---------------------------------------------------------------- creation and raising

TEST(EventCreate, HandlesHaveTheEventKindsAndWaitSignal) {
	run_body([] {
		HelHandle o = oneshot(), b = bitset();
		EXPECT_NE(o, b);
		EXPECT_EQ(info_of(o).type, kHelDescOneshotEvent);
		EXPECT_EQ(info_of(b).type, kHelDescBitsetEvent);
		EXPECT_EQ(info_of(o).rights, std::uint32_t{kHelRightWait | kHelRightSignal});
		EXPECT_EQ(info_of(b).rights, std::uint32_t{kHelRightWait | kHelRightSignal});
		HelDescriptorInfo info{};
		EXPECT_EQ(helDescriptorInfo(o, &info), kHelErrNone);
		EXPECT_EQ(info.type, kHelDescOneshotEvent);
		EXPECT_EQ(helDescriptorInfo(b, &info), kHelErrNone);
		EXPECT_EQ(info.type, kHelDescBitsetEvent);
		EXPECT_EQ(helDescriptorInfo(b, reinterpret_cast<HelDescriptorInfo *>(8)), kHelErrFault);
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, o), kHelErrNone);
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, b), kHelErrNone);
	});
}

TEST(EventRaise, EveryErrorPath) {
	run_body([] {
		HelHandle o = oneshot(), b = bitset(), q = helsim::test::make_queue();
		EXPECT_EQ(helRaiseEvent(kHelNullHandle), kHelErrNoDescriptor);
		EXPECT_EQ(helRaiseEvent(987654), kHelErrNoDescriptor);
		EXPECT_EQ(helRaiseEvent(q), kHelErrBadDescriptor);
		EXPECT_EQ(helsimRaiseBitsetEvent(q, 1), kHelErrBadDescriptor);
		// As thor: helRaiseEvent takes oneshot events only (bitset bits come from kernlets).
		EXPECT_EQ(helRaiseEvent(b), kHelErrBadDescriptor);
		EXPECT_EQ(helsimRaiseBitsetEvent(b, 0), kHelErrBadDescriptor);
		EXPECT_EQ(helsimRaiseBitsetEvent(o, 1), kHelErrIllegalArgs);
		EXPECT_EQ(helSyscall2(kHelCallRaiseEvent, static_cast<HelWord>(b), HelWord{1} << 32),
				kHelErrIllegalArgs);
		EXPECT_EQ(helRaiseEvent(narrowed(o, kHelRightWait)), kHelErrBadRights);
		EXPECT_EQ(helsimRaiseBitsetEvent(narrowed(b, kHelRightWait), 1), kHelErrBadRights);
		EXPECT_EQ(helRaiseEvent(narrowed(o, kHelRightSignal)), kHelErrNone);
		EXPECT_EQ(helRaiseEvent(o), kHelErrIllegalState) << "raised at most once";
		EXPECT_EQ(helsimRaiseBitsetEvent(narrowed(b, kHelRightSignal), 1), kHelErrNone);
		EXPECT_EQ(helsimRaiseBitsetEvent(b, 1), kHelErrNone) << "bits may be raised again";
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, b), kHelErrNone);
		EXPECT_EQ(helsimRaiseBitsetEvent(b, 1), kHelErrNoDescriptor);
	});
}

// ---------------------------------------------------------------- submission errors

TEST(EventAwait, SubmissionErrorsAreContextAllOnes) {
	run_body(
			[] {
				helsim::Dispatcher d;
				HelHandle o = oneshot();
				await(d, 1, 987654, 0);
				await(d, 2, d.queue(), 0);
				await(d, 3, narrowed(o, kHelRightSignal), 0);
				d.submit(kHelSubmitAwaitEvent, 4, HelSqCancel{0}); // 8 bytes: too short
				d.flush();
				for (HelError want : {kHelErrNoDescriptor, kHelErrBadDescriptor, kHelErrBadRights,
							 kHelErrBufferTooSmall}) {
					auto e = d.wait();
					ASSERT_TRUE(e);
					EXPECT_EQ(e->context(), kSubmitError);
					EXPECT_EQ(e->error(), want);
				}
				// Wait alone is enough.
				await(d, 5, narrowed(o, kHelRightWait), 0);
				d.flush();
				expect_next(d, 5, kHelErrNone, 0, 1);
			},
			4);
}

TEST(EventAwait, LegacyErrorsAreReturnedByTheCall) {
	run_body([] {
		helsim::Dispatcher d;
		HelHandle o = oneshot();
		EXPECT_EQ(helSubmitAwaitEvent(987654, 0, d.queue(), 1), kHelErrNoDescriptor);
		EXPECT_EQ(helSubmitAwaitEvent(d.queue(), 0, d.queue(), 1), kHelErrBadDescriptor);
		EXPECT_EQ(helSubmitAwaitEvent(narrowed(o, kHelRightSignal), 0, d.queue(), 1),
				kHelErrBadRights);
		EXPECT_EQ(helSubmitAwaitEvent(o, 0, 987654, 1), kHelErrNoDescriptor);
		EXPECT_EQ(helSubmitAwaitEvent(o, 0, o, 1), kHelErrBadDescriptor);
		EXPECT_EQ(helSubmitAwaitEvent(o, 0, narrowed(d.queue(), kHelRightWait), 1),
				kHelErrBadRights);
		EXPECT_FALSE(d.poll()) << "a refused call submits nothing";
		EXPECT_EQ(helSubmitAwaitEvent(o, 0, d.queue(), 9), kHelErrNone);
		expect_next(d, 9, kHelErrNone, 0, 1);
	});
}

// ---------------------------------------------------------------- oneshot sequences

// thor's OneshotEvent::submitAwait: 0 completes at once with 1 (no bit) before the raise,
// 1 waits; after the raise both complete at once with 2 and bit 0; above 1 is refused.
TEST(OneshotEvent, SequenceRulesBeforeAndAfterTheRaise) {
	run_body([] {
		helsim::Dispatcher d;
		HelHandle o = oneshot();
		await(d, 1, o, 0);
		d.flush();
		expect_next(d, 1, kHelErrNone, 0, 1);
		await(d, 2, o, 1);
		await(d, 3, o, 1);
		expect_nothing(d);
		await(d, 4, o, 2);
		d.flush();
		expect_next(d, 4, kHelErrIllegalArgs, 0, 0);
		EXPECT_EQ(helRaiseEvent(o), kHelErrNone);
		expect_next(d, 2, kHelErrNone, 1, 2);
		expect_next(d, 3, kHelErrNone, 1, 2);
		await(d, 5, o, 0);
		await(d, 6, o, 1);
		await(d, 7, o, 2);
		d.flush();
		expect_next(d, 5, kHelErrNone, 1, 2);
		expect_next(d, 6, kHelErrNone, 1, 2);
		expect_next(d, 7, kHelErrIllegalArgs, 0, 0);
	});
}

// ---------------------------------------------------------------- bitset sequences

TEST(BitsetEvent, SequenceRulesAndAccumulatedBits) {
	run_body([] {
		helsim::Dispatcher d;
		HelHandle b = bitset();
		await(d, 1, b, 0);
		d.flush();
		expect_next(d, 1, kHelErrNone, 0, 1); // a fresh event is at sequence 1
		await(d, 2, b, 1);
		expect_nothing(d);
		EXPECT_EQ(helsimRaiseBitsetEvent(b, 0b101), kHelErrNone);
		expect_next(d, 2, kHelErrNone, 0b101, 2);
		EXPECT_EQ(helsimRaiseBitsetEvent(b, 0b100), kHelErrNone);       // 3
		EXPECT_EQ(helsimRaiseBitsetEvent(b, 0x80000000u), kHelErrNone); // 4
		// Old sequences complete at once with every bit raised after them.
		await(d, 3, b, 1);
		await(d, 4, b, 2);
		await(d, 5, b, 3);
		await(d, 6, b, 0);
		await(d, 7, b, 5); // from the future
		d.flush();
		expect_next(d, 3, kHelErrNone, 0x80000005u, 4);
		expect_next(d, 4, kHelErrNone, 0x80000004u, 4);
		expect_next(d, 5, kHelErrNone, 0x80000000u, 4);
		expect_next(d, 6, kHelErrNone, 0x80000005u, 4);
		expect_next(d, 7, kHelErrIllegalArgs, 0, 0);
		// The current sequence waits; one raise completes every waiter, in submission order,
		// with that raise's sequence and bits.
		await(d, 8, b, 4);
		await(d, 9, b, 4);
		expect_nothing(d);
		EXPECT_EQ(helsimRaiseBitsetEvent(b, 0b10), kHelErrNone);
		expect_next(d, 8, kHelErrNone, 0b10, 5);
		expect_next(d, 9, kHelErrNone, 0b10, 5);
	});
}

// HelSqAwaitEvent has no mask (nor has thor's BitsetEvent): a consumer that cares about some
// bits filters the completions and awaits again with the sequence it was given.
TEST(BitsetEvent, AConsumerFiltersBitsWithItsOwnMask) {
	run_body([] {
		helsim::Dispatcher d;
		HelHandle b = bitset();
		constexpr std::uint32_t kMask = 0b1000;
		EXPECT_EQ(helsimRaiseBitsetEvent(b, 0b0010), kHelErrNone); // 2
		EXPECT_EQ(helsimRaiseBitsetEvent(b, 0b0100), kHelErrNone); // 3
		std::uint64_t sequence = 1;
		std::vector<std::uint32_t> seen;
		await(d, 1, b, sequence);
		d.flush();
		for (;;) {
			Seen s = take(d);
			ASSERT_EQ(s.result.error, kHelErrNone);
			ASSERT_GT(s.result.sequence, sequence);
			seen.push_back(s.result.bitset);
			sequence = s.result.sequence;
			if (s.result.bitset & kMask)
				break;
			await(d, 1, b, sequence);
			d.flush();
			if (sequence == 3) {
				EXPECT_EQ(helsimRaiseBitsetEvent(b, 0b1001), kHelErrNone); // 4
			}
		}
		EXPECT_EQ(seen, (std::vector<std::uint32_t>{0b0110, 0b1001}));
		EXPECT_EQ(sequence, 4u);
	});
}

// ---------------------------------------------------------------- cancellation

TEST(EventAwait, CancelByTagCompletesWaitingAwaitsOnce) {
	run_body([] {
		helsim::Dispatcher d;
		HelHandle o = oneshot(), b = bitset();
		await(d, 1, o, 1, 7);
		await(d, 2, b, 1, 7);
		await(d, 3, b, 1, 8);
		await(d, 4, b, 1, 0); // tag 0: not cancellable
		expect_nothing(d);
		cancel(d, 7);
		d.flush();
		// Both, in the registry's order (not specified).
		std::uintptr_t contexts = 0;
		for (int i = 0; i < 2; ++i) {
			Seen s = take(d);
			contexts |= s.context;
			EXPECT_EQ(s.result.error, kHelErrCancelled);
			EXPECT_EQ(s.result.sequence, 0u);
		}
		EXPECT_EQ(contexts, 3u);
		cancel(d, 0);
		cancel(d, 7); // nothing left under 7
		expect_nothing(d);
		EXPECT_EQ(helsimRaiseBitsetEvent(b, 1), kHelErrNone);
		expect_next(d, 3, kHelErrNone, 1, 2);
		expect_next(d, 4, kHelErrNone, 1, 2);
		cancel(d, 8); // completed already: no second completion
		// An await that completes at once is not cancellable afterwards.
		await(d, 5, b, 1, 9);
		cancel(d, 9);
		// Submitted and cancelled in one batch.
		await(d, 6, o, 1, 10);
		cancel(d, 10);
		d.flush();
		expect_next(d, 5, kHelErrNone, 1, 2);
		expect_next(d, 6, kHelErrCancelled, 0, 0);
		expect_nothing(d);
		EXPECT_EQ(helRaiseEvent(o), kHelErrNone);
		expect_nothing(d);
	});
}

// ---------------------------------------------------------------- legacy path

// The 2022 syscall runs the SQ operation: the same completions, in the same order.
TEST(EventAwait, LegacyPathEqualsSqPath) {
	auto script = [](bool legacy) {
		std::vector<std::string> out;
		run_body([&] {
			helsim::Dispatcher d;
			HelHandle o = oneshot(), b = bitset();
			auto submit = [&](std::uintptr_t context, HelHandle event, std::uint64_t sequence) {
				if (legacy)
					EXPECT_EQ(helSubmitAwaitEvent(event, sequence, d.queue(), context),
							kHelErrNone);
				else
					await(d, context, event, sequence);
				d.flush();
			};
			auto record = [&] {
				Seen s = take(d);
				out.push_back(std::to_string(s.context) + ":" + std::to_string(s.result.error) +
						"/" + std::to_string(s.result.bitset) + "/" +
						std::to_string(s.result.sequence));
			};
			submit(1, o, 0);
			record();
			submit(2, o, 1);
			submit(3, b, 1);
			EXPECT_EQ(helRaiseEvent(o), kHelErrNone);
			record();
			EXPECT_EQ(helsimRaiseBitsetEvent(b, 6), kHelErrNone);
			record();
			submit(4, b, 1);
			record();
			submit(5, b, 3);
			record();
			submit(6, o, 3);
			record();
		});
		return out;
	};
	auto sq = script(false);
	EXPECT_EQ(sq.size(), 6u);
	EXPECT_EQ(script(true), sq);
}

// ---------------------------------------------------------------- teardown

// The last handle closes: nobody can raise the event any more, so its waiting awaits
// complete with kHelErrCancelled, once (a later cancel of their tags finds nothing).
TEST(EventTeardown, ClosingTheLastHandleCompletesWaitingAwaits) {
	run_body([] {
		helsim::Dispatcher d;
		HelHandle o = oneshot(), b = bitset();
		HelHandle copy = narrowed(o, kHelRightWait);
		await(d, 1, o, 1, 5);
		await(d, 2, b, 1);
		await(d, 3, o, 1);
		expect_nothing(d);
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, o), kHelErrNone);
		expect_nothing(d); // a handle is still open
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, copy), kHelErrNone);
		expect_next(d, 1, kHelErrCancelled, 0, 0);
		expect_next(d, 3, kHelErrCancelled, 0, 0);
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, b), kHelErrNone);
		expect_next(d, 2, kHelErrCancelled, 0, 0);
		cancel(d, 5);
		expect_nothing(d);
	});
}

// A thread blocked on an await nobody raises: the stuck report names the await; the machine's
// teardown then completes it (ASan and the leak check see the rest).
TEST(EventTeardown, StuckAwaitIsReportedAndTornDown) {
	helsim::Machine machine{config(1)};
	machine.spawn("waiter", [](std::span<const HelHandle>) {
		helsim::Dispatcher d;
		HelHandle o = oneshot();
		await(d, 1, o, 1);
		d.wait();
	});
	auto report = machine.run();
	ASSERT_TRUE(report.stuck) << report.to_string();
	const auto *waiter = helsim::test::find_thread(report, "waiter");
	ASSERT_NE(waiter, nullptr);
	EXPECT_NE(waiter->waits_on.find("awaitEvent on oneshot event handle"), std::string::npos)
			<< waiter->waits_on;
	EXPECT_EQ(report.operations_pending(), 1u);
}

// ---------------------------------------------------------------- concurrency

namespace {

// Raisers and awaiters in one universe (helCreateThread), for both modes. Each raiser raises
// its own bit `raises` times; each awaiter follows the sequence from 1 until it has seen every
// raise, cancelling some of its awaits by tag on the way. Invariants: sequences grow strictly,
// never past the raises done; a completion after sequence s carries a bit; every raiser's bit
// is seen; at the end the sequence is 1 + all raises (nothing lost).
struct Shared {
	HelHandle bitset = kHelNullHandle;
	HelHandle oneshot = kHelNullHandle;
	int raisers = 0;
	int raises = 0;
	std::atomic<int> raised{0};
	std::atomic<int> violations{0};
	std::atomic<int> cancelled{0};
	std::string first_violation;
	std::atomic<bool> noted{false};

	void violation(const std::string &what) {
		if (!noted.exchange(true))
			first_violation = what;
		++violations;
	}
};

constexpr std::uintptr_t kOneshotContext = std::uintptr_t{1} << 60;

void raiser(std::uintptr_t arg) {
	auto &[s, bit] = *reinterpret_cast<std::pair<Shared *, int> *>(arg);
	for (int i = 0; i < s->raises; ++i) {
		s->raised.fetch_add(1, std::memory_order_seq_cst);
		if (helsimRaiseBitsetEvent(s->bitset, 1u << bit) != kHelErrNone)
			s->violation("raise failed");
		if (i % 16 == 0)
			helYield();
	}
	if (bit == 0 && helRaiseEvent(s->oneshot) != kHelErrNone)
		s->violation("oneshot raise failed");
}

void awaiter(std::uintptr_t arg) {
	auto &[s, id] = *reinterpret_cast<std::pair<Shared *, int> *>(arg);
	helsim::Dispatcher d;
	const std::uint64_t total = static_cast<std::uint64_t>(s->raisers) * s->raises;
	std::uint64_t sequence = 1;
	std::uint32_t seen_bits = 0;
	await(d, kOneshotContext, s->oneshot, 1);
	d.flush();
	bool oneshot_done = false;
	for (std::uint64_t round = 0; sequence < 1 + total; ++round) {
		std::uint64_t tag = (static_cast<std::uint64_t>(id) << 32) | round;
		await(d, round, s->bitset, sequence, tag);
		if (round % 5 == 0)
			cancel(d, tag);
		d.flush();
		for (;;) {
			Seen got = take(d);
			if (got.context == kOneshotContext) {
				if (got.result.error != kHelErrNone || got.result.sequence != 2 ||
						got.result.bitset != 1)
					s->violation("oneshot result");
				oneshot_done = true;
				continue;
			}
			if (got.context != round) {
				s->violation("context " + std::to_string(got.context) + " in round " +
						std::to_string(round));
				break;
			}
			if (got.result.error == kHelErrCancelled) {
				++s->cancelled;
				break;
			}
			std::uint64_t limit = 1 + static_cast<std::uint64_t>(s->raised.load());
			if (got.result.error != kHelErrNone || got.result.sequence <= sequence ||
					got.result.sequence > limit || !got.result.bitset)
				s->violation("round " + std::to_string(round) + ": error " +
						std::to_string(got.result.error) + " sequence " +
						std::to_string(got.result.sequence) + " after " + std::to_string(sequence));
			seen_bits |= got.result.bitset;
			sequence = std::max(sequence, got.result.sequence);
			break;
		}
	}
	if (!oneshot_done) {
		Seen got = take(d);
		if (got.context != kOneshotContext || got.result.sequence != 2)
			s->violation("oneshot completion missing");
	}
	if (sequence != 1 + total)
		s->violation("ended at sequence " + std::to_string(sequence));
	if (seen_bits != (1u << s->raisers) - 1)
		s->violation("bits seen " + std::to_string(seen_bits));
}

// The body of one run: creates the events and the threads, waits for them, closes up.
void raisers_and_awaiters(Shared &s, int raisers, int awaiters, int raises) {
	s.bitset = bitset();
	s.oneshot = oneshot();
	s.raisers = raisers;
	s.raises = raises;
	std::vector<std::pair<Shared *, int>> args;
	args.reserve(static_cast<std::size_t>(raisers + awaiters));
	std::vector<HelHandle> threads;
	auto start = [&](void (*entry)(std::uintptr_t), int id) {
		args.emplace_back(&s, id);
		HelHandle h = kHelNullHandle;
		EXPECT_EQ(helCreateThread(kHelNullHandle, kHelNullHandle, kHelAbiSystemV,
						  reinterpret_cast<void *>(entry), reinterpret_cast<void *>(&args.back()),
						  0, &h),
				kHelErrNone);
		threads.push_back(h);
	};
	for (int i = 0; i < awaiters; ++i)
		start(awaiter, i);
	for (int i = 0; i < raisers; ++i)
		start(raiser, i);
	// Each thread's end (closing its last handle earlier would kill it).
	helsim::Dispatcher d;
	for (HelHandle h : threads) {
		EXPECT_EQ(helsim::test::observe(d, h).error, kHelErrThreadTerminated);
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, h), kHelErrNone);
	}
	EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, s.bitset), kHelErrNone);
	EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, s.oneshot), kHelErrNone);
}

helsim::RunReport run_concurrent(helsim::MachineConfig c, int raisers, int awaiters, int raises,
		Shared &s) {
	helsim::Machine machine{std::move(c)};
	machine.spawn("main", [&](std::span<const HelHandle>) {
		raisers_and_awaiters(s, raisers, awaiters, raises);
	});
	auto report = machine.run();
	expect_clean(report);
	EXPECT_EQ(report.counters.completions_posted, report.counters.operations_completed);
	EXPECT_EQ(s.violations.load(), 0) << s.first_violation;
	return report;
}

} // namespace

TEST(EventStress, ConcurrentRaisersAndAwaitersLoseNothing) {
	Shared s;
	run_concurrent(config(2), 3, 3, 4000, s);
	EXPECT_GT(s.cancelled.load(), 0);
}

TEST(EventSeeded, RaisersAndAwaitersUnderEverySeed) {
	helsim::testing::for_each_seed(
			[](std::uint64_t seed) {
				auto c = helsim::testing::deterministic(seed);
				c.preempt_at_syscall_ppm = 200'000;
				Shared s;
				run_concurrent(c, 2, 2, 40, s);
			},
			32);
}

TEST(EventSeeded, TheSameSeedGivesTheSameTrace) {
	auto hash = [] {
		auto c = helsim::testing::deterministic(7);
		Shared s;
		return run_concurrent(c, 2, 2, 20, s).trace_hash;
	};
	std::uint64_t first = hash();
	EXPECT_NE(first, 0u);
	EXPECT_EQ(hash(), first);
}
