// Tests of the clock (src/kernel/threads/clock.cpp): helGetClock, kHelSubmitAwaitClock and its
// cancellation through kHelSubmitCancel tags.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace {

constexpr std::uint64_t kMs = 1'000'000;

helsim::MachineConfig config(unsigned cpus, std::size_t memory = std::size_t{64} << 20) {
	helsim::MachineConfig c;
	c.cpus = cpus;
	c.physical_memory = memory;
	return c;
}

std::uint64_t now() {
	std::uint64_t t = 0;
	EXPECT_EQ(helGetClock(&t), kHelErrNone);
	return t;
}

void await_clock(helsim::Dispatcher &d, std::uintptr_t context, std::uint64_t deadline,
		std::uint64_t tag = 0) {
	d.submit(kHelSubmitAwaitClock, context, HelSqAwaitClock{deadline, tag});
}

void cancel(helsim::Dispatcher &d, std::uint64_t tag) {
	d.submit(kHelSubmitCancel, 0, HelSqCancel{tag});
}

void nop(helsim::Dispatcher &d, std::uintptr_t context) {
	d.submit(kHelSubmitAsyncNop, context, std::span<const std::byte>{});
}

// Runs `body` in a fiber thread (a lost completion then shows as a stuck machine instead of a
// hung test) and checks the machine ended clean: nothing pending, nothing leaked.
helsim::RunReport run_body(std::function<void()> body, unsigned cpus = 2) {
	helsim::Machine machine{config(cpus)};
	machine.spawn("body", [&](std::span<const HelHandle>) { body(); });
	auto report = machine.run();
	EXPECT_FALSE(report.stuck) << report.to_string();
	for (const auto &t : report.threads)
		EXPECT_EQ(t.outcome, helsim::ThreadOutcome::returned) << t.name << ": " << t.message;
	EXPECT_EQ(report.operations_pending(), 0u) << report.to_string();
	EXPECT_EQ(report.counters.completions_posted, report.counters.operations_completed)
			<< "no submission was refused and nothing completed twice";
	EXPECT_TRUE(report.leaks.empty()) << report.to_string();
	return report;
}

} // namespace

TEST(ClockGet, IsMonotonicAndAdvances) {
	helsim::Machine machine;
	auto a = machine.attach();
	std::uint64_t first = now();
	std::uint64_t last = first;
	for (int i = 0; i < 10000; ++i) {
		std::uint64_t t = now();
		ASSERT_GE(t, last);
		last = t;
	}
	for (int i = 0; i < 1000000 && last == first; ++i)
		last = now();
	EXPECT_GT(last, first);
}

TEST(ClockGet, IsMonotonicAcrossThreads) {
	// A value read on one CPU is never ahead of a value read later on another.
	std::atomic<std::uint64_t> published{0};
	std::atomic<int> violations{0};
	helsim::Machine machine{config(2)};
	for (int t = 0; t < 2; ++t)
		machine.spawn("reader", [&](std::span<const HelHandle>) {
			for (int i = 0; i < 20000; ++i) {
				std::uint64_t seen = published.load(std::memory_order_acquire);
				std::uint64_t mine = now();
				if (mine < seen)
					++violations;
				std::uint64_t expected = published.load(std::memory_order_relaxed);
				while (expected < mine &&
						!published.compare_exchange_weak(expected, mine,
								std::memory_order_release)) {
				}
				if (i % 256 == 0)
					helYield();
			}
		});
	auto report = machine.run();
	EXPECT_FALSE(report.stuck);
	EXPECT_EQ(violations.load(), 0);
}

TEST(ClockAwait, DeadlineInThePastCompletesAtOnce) {
	run_body([] {
		helsim::Dispatcher d;
		await_clock(d, 1, 0);
		await_clock(d, 2, now());
		d.flush();
		// No wait: the completions are in the ring as soon as the SQ was driven.
		for (std::uintptr_t ctx : {1u, 2u}) {
			auto e = d.poll();
			ASSERT_TRUE(e);
			EXPECT_EQ(e->context(), ctx);
			EXPECT_EQ(e->error(), kHelErrNone);
			EXPECT_EQ(e->payload().size(), sizeof(HelSimpleResult));
		}
		EXPECT_FALSE(d.poll());
	});
}

TEST(ClockAwait, CompletesNoEarlierThanTheDeadline) {
	run_body([] {
		helsim::Dispatcher d;
		const std::uint64_t deadline = now() + 2 * kMs;
		await_clock(d, 7, deadline);
		d.flush();
		if (auto early = d.poll()) // only if the flush itself took longer than 2 ms
			EXPECT_GE(now(), deadline);
		else {
			auto e = d.wait();
			ASSERT_TRUE(e);
			EXPECT_EQ(e->context(), 7u);
			EXPECT_EQ(e->error(), kHelErrNone);
			EXPECT_GE(now(), deadline);
		}
	});
}

TEST(ClockAwait, SeveralDeadlinesCompleteInDeadlineOrder) {
	run_body([] {
		helsim::Dispatcher d;
		const std::uint64_t base = now();
		const std::uint64_t deadlines[4] = {base + 3 * kMs, base + 1 * kMs, base + 4 * kMs,
				base + 2 * kMs};
		for (std::uintptr_t i = 0; i < 4; ++i)
			await_clock(d, i, deadlines[i]);
		d.flush();
		// Deadlines still ahead once the SQ was driven were armed in time, so they must fire
		// in deadline order (on a loaded host an earlier one may already have completed).
		const std::uint64_t flushed = now();
		std::vector<std::uint64_t> armed;
		for (int n = 0; n < 4; ++n) {
			auto e = d.wait();
			ASSERT_TRUE(e);
			ASSERT_LT(e->context(), 4u);
			EXPECT_GE(now(), deadlines[e->context()]);
			if (deadlines[e->context()] > flushed)
				armed.push_back(deadlines[e->context()]);
		}
		EXPECT_TRUE(std::is_sorted(armed.begin(), armed.end()));
	});
}

TEST(ClockCancel, CancelByTagGivesCancelled) {
	run_body([] {
		helsim::Dispatcher d;
		const std::uint64_t deadline = now() + 500 * kMs; // a failed cancel shows as a slow test
		await_clock(d, 11, deadline, 42);
		d.flush();
		EXPECT_FALSE(d.poll());
		cancel(d, 42);
		auto e = d.wait();
		ASSERT_TRUE(e);
		EXPECT_EQ(e->context(), 11u);
		EXPECT_EQ(e->error(), kHelErrCancelled);
		EXPECT_LT(now(), deadline);
	});
}

TEST(ClockCancel, AllOperationsWithTheTagAreCancelled) {
	run_body([] {
		helsim::Dispatcher d;
		const std::uint64_t start = now();
		for (std::uintptr_t i = 0; i < 3; ++i)
			await_clock(d, i, start + 500 * kMs, 7);
		await_clock(d, 10, start + 1 * kMs, 8); // another tag: untouched
		cancel(d, 7);
		d.flush();
		int cancelled = 0;
		bool other = false;
		for (int n = 0; n < 4; ++n) {
			auto e = d.wait();
			ASSERT_TRUE(e);
			if (e->context() == 10) {
				EXPECT_EQ(e->error(), kHelErrNone);
				EXPECT_GE(now(), start + 1 * kMs);
				other = true;
			} else {
				EXPECT_LT(e->context(), 3u);
				EXPECT_EQ(e->error(), kHelErrCancelled);
				++cancelled;
			}
		}
		EXPECT_EQ(cancelled, 3);
		EXPECT_TRUE(other);
		EXPECT_LT(now(), start + 500 * kMs);
		// A second cancel of the same tag finds nothing.
		cancel(d, 7);
		nop(d, 99);
		auto e = d.wait();
		ASSERT_TRUE(e);
		EXPECT_EQ(e->context(), 99u);
		EXPECT_FALSE(d.poll());
	});
}

TEST(ClockCancel, TagZeroIsNotCancellable) {
	run_body([] {
		helsim::Dispatcher d;
		const std::uint64_t deadline = now() + 3 * kMs;
		await_clock(d, 5, deadline, 0);
		cancel(d, 0);
		d.flush();
		auto e = d.wait();
		ASSERT_TRUE(e);
		EXPECT_EQ(e->context(), 5u);
		EXPECT_EQ(e->error(), kHelErrNone);
		EXPECT_GE(now(), deadline);
	});
}

TEST(ClockCancel, UnknownTagProducesNoCompletion) {
	run_body([] {
		helsim::Dispatcher d;
		const std::uint64_t deadline = now() + 1 * kMs;
		await_clock(d, 1, deadline, 5);
		cancel(d, 12345);
		nop(d, 2); // a marker behind the cancel
		d.flush();
		// Whatever the cancel posted would come before the marker; only the wait (if its
		// deadline already passed) may.
		int awaits = 0;
		for (bool marker = false; !marker || awaits == 0;) {
			auto e = d.wait();
			ASSERT_TRUE(e);
			if (e->context() == 2) {
				EXPECT_FALSE(marker);
				marker = true;
				continue;
			}
			ASSERT_EQ(e->context(), 1u) << "the cancel posted something";
			EXPECT_EQ(e->error(), kHelErrNone) << "tag 5 was not affected";
			EXPECT_GE(now(), deadline);
			++awaits;
		}
		EXPECT_EQ(awaits, 1);
		EXPECT_FALSE(d.poll());
	});
}

TEST(ClockCancel, CancelAfterExpiryHasNoEffect) {
	run_body([] {
		helsim::Dispatcher d;
		await_clock(d, 1, now() + 1 * kMs, 9);
		d.flush();
		auto e = d.wait();
		ASSERT_TRUE(e);
		EXPECT_EQ(e->error(), kHelErrNone);
		cancel(d, 9);
		nop(d, 2);
		e = d.wait();
		ASSERT_TRUE(e);
		EXPECT_EQ(e->context(), 2u);
		EXPECT_FALSE(d.poll());
	});
}

TEST(ClockCancel, CancelRacingExpiryCompletesExactlyOnce) {
	constexpr std::uintptr_t kIterations = 1000;
	int none = 0, cancelled = 0;
	auto report = run_body(
			[&] {
				helsim::Dispatcher d{{.cq_chunks = 4, .sq_chunks = 4, .chunk_size = 512}};

				for (std::uintptr_t i = 0; i < kIterations; ++i) {
					// Deadlines a few microseconds either side of "now": the timer fires on
					// some CPU while this thread's cancel runs.
					std::uint64_t deadline = now() + (i % 5) * 2000;
					await_clock(d, i, deadline, i + 1);
					if (i % 2)
						d.flush(); // sometimes the timer is armed before the cancel is seen
					cancel(d, i + 1);
					auto e = d.wait();
					ASSERT_TRUE(e);
					ASSERT_EQ(e->context(), i) << "a stray or duplicate completion";
					HelError err = e->error();
					ASSERT_TRUE(err == kHelErrNone || err == kHelErrCancelled) << err;
					(err == kHelErrNone ? none : cancelled)++;
				}
				// Anything still in flight would show up before this marker's completion.
				await_clock(d, kIterations, now() + 2 * kMs);
				d.flush();
				auto e = d.wait();
				ASSERT_TRUE(e);
				EXPECT_EQ(e->context(), kIterations);
				EXPECT_FALSE(d.poll());
			},
			4);
	EXPECT_EQ(static_cast<std::uintptr_t>(none + cancelled), kIterations);
	RecordProperty("expired", none); // how the races went, in --gtest_output=xml
	RecordProperty("cancelled", cancelled);
	EXPECT_EQ(report.counters.operations_submitted, kIterations + 1);
	EXPECT_EQ(report.counters.completions_posted, kIterations + 1);
}

TEST(ClockAwait, WaitStillArmedWhenTheThreadEndsIsReportedPending) {
	// The body returns with an armed timer: run() does not wait for it, reports the operation
	// as pending, and the machine's teardown releases it.
	helsim::Machine machine;
	machine.spawn("body", [](std::span<const HelHandle>) {
		helsim::Dispatcher d;
		await_clock(d, 1, now() + 1000 * kMs, 3);
		d.flush();
	});
	auto report = machine.run();
	EXPECT_FALSE(report.stuck);
	EXPECT_EQ(report.counters.operations_submitted, 1u);
	EXPECT_EQ(report.operations_pending(), 1u) << report.to_string();
}
