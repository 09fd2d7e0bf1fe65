// Extension operations that a plain host thread completes (ext::CompletedBy::host_thread): the
// machine counts such an operation as activity until it ends, so a thread waiting for it is not
// stuck; in deterministic mode the completion is delivered at an idle point, so a seed gives the
// same run whenever the host thread completes; a cancellation by tag or the teardown ends the
// operation once, and a host thread's later complete() finds it ended. The host threads here
// wait for what the test controls (an operation handed over, the machine gone idle, a hook),
// never for a while.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <span>
#include <thread>
#include <utility>

#include <helsim/dispatcher.hpp>
#include <helsim/extension.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>
#include <helsim/testing.hpp>

#include "../../support.hpp"
#include "kernel/core/kernel.hpp"

namespace {

using helsim::ext::AsyncOperation;
using helsim::ext::Caller;
using helsim::ext::CompletedBy;
using helsim::ext::SqSubmission;

constexpr std::uint32_t kOutside = helsim::ext::kFirstExtensionSqOpcode + 40;

struct OutsideRequest {
	std::uint64_t cancellation_tag;
};

struct OutsideResult {
	HelError error;
	int reserved;
	std::uint64_t value;
};

// Operations the extension hands to the test's host thread, in start order.
class Mailbox {
public:
	void put(AsyncOperation op) {
		{
			std::lock_guard lock{mutex_};
			ops_.push_back(std::move(op));
		}
		cv_.notify_all();
	}
	AsyncOperation take() {
		std::unique_lock lock{mutex_};
		cv_.wait(lock, [this] { return !ops_.empty(); });
		AsyncOperation op = std::move(ops_.front());
		ops_.pop_front();
		return op;
	}

private:
	std::mutex mutex_;
	std::condition_variable cv_;
	std::deque<AsyncOperation> ops_;
};

Mailbox *g_mailbox = nullptr;
std::atomic<int> g_cancel_hooks{0};
std::function<void()> g_on_cancel; // the test's part of the hook, if any

HelError outside_handler(Caller &, const SqSubmission &submission) {
	OutsideRequest request;
	if (submission.payload().size() < sizeof(request))
		return kHelErrBufferTooSmall;
	std::memcpy(&request, submission.payload().data(), sizeof(request));
	g_mailbox->put(submission.start(
			request.cancellation_tag,
			[] {
				g_cancel_hooks.fetch_add(1);
				if (g_on_cancel)
					g_on_cancel();
			},
			CompletedBy::host_thread));
	return kHelErrNone;
}

// A machine with the opcode, and the test's mailbox and hook for its lifetime.
class Fixture {
public:
	explicit Fixture(helsim::MachineConfig config = {}) : machine{std::move(config)} {
		g_mailbox = &mailbox;
		g_cancel_hooks = 0;
		g_on_cancel = nullptr;
		helsim::ext::register_sq_opcode(machine, kOutside, "test.outside", sizeof(OutsideResult),
				outside_handler);
	}
	// Blocks the calling host thread until every simulated thread waits (or has ended) and
	// only outside work keeps the machine going: the moment a machine without it would stop.
	void wait_until_idle() {
		while (machine.kernel_for_extensions().host().activity() > 1)
			std::this_thread::yield();
	}

	Mailbox mailbox;
	helsim::Machine machine;
};

bool complete_with(const AsyncOperation &op, std::uint64_t value) {
	OutsideResult result{kHelErrNone, 0, value};
	return op.complete(std::as_bytes(std::span{&result, 1}));
}

helsim::Element wait_context(helsim::Dispatcher &d, std::uintptr_t context) {
	return d.wait_for(context, [](helsim::Element e) {
		ADD_FAILURE() << "unexpected completion, context " << e.context();
	});
}

// The submitter blocks in a wait for the completion alone; the host thread completes only once
// the machine is idle but for it. Without the operation counting as activity, the run would end
// there with the submitter reported stuck.
TEST(ExtensionOutsideCompletion, AMachineWaitsForAHostThreadsCompletion) {
	Fixture f;
	std::uint64_t value = 0;
	f.machine.spawn("submitter", [&](std::span<const HelHandle>) {
		helsim::Dispatcher d;
		d.submit(kOutside, 1, OutsideRequest{0});
		d.flush();
		helsim::Element element = wait_context(d, 1);
		EXPECT_EQ(element.error(), kHelErrNone);
		value = element.as<OutsideResult>().value;
		element.release();
	});
	std::thread completer{[&] {
		AsyncOperation op = f.mailbox.take();
		f.wait_until_idle();
		EXPECT_TRUE(complete_with(op, 42));
		EXPECT_TRUE(op.ended());
	}};
	helsim::RunReport report = f.machine.run();
	completer.join();
	helsim::test::expect_clean(report);
	EXPECT_EQ(value, 42u);
	EXPECT_EQ(report.counters.operations_submitted, 1u);
	EXPECT_EQ(report.counters.operations_completed, 1u);
	EXPECT_EQ(g_cancel_hooks.load(), 0);
}

// One seeded run with the host thread completing as soon as it has the operation (while the
// submitter and another thread still run), one with it completing once the machine is idle:
// the completion lands at the same idle point, so the schedule is the same.
TEST(ExtensionOutsideCompletion, DeterministicRunsAreTheSameWhateverTheHostThreadsTiming) {
	auto run = [](std::uint64_t seed, bool wait_for_idle) {
		Fixture f{helsim::testing::deterministic(seed)};
		f.machine.spawn("noise", [](std::span<const HelHandle>) {
			for (int i = 0; i < 30; ++i)
				EXPECT_EQ(helYield(), kHelErrNone);
		});
		f.machine.spawn("submitter", [](std::span<const HelHandle>) {
			helsim::Dispatcher d;
			d.submit(kOutside, 1, OutsideRequest{0});
			d.flush();
			for (int i = 0; i < 20; ++i)
				EXPECT_EQ(helNop(), kHelErrNone);
			helsim::Element element = wait_context(d, 1);
			EXPECT_EQ(element.as<OutsideResult>().value, 7u);
			element.release();
		});
		std::thread completer{[&] {
			AsyncOperation op = f.mailbox.take();
			if (wait_for_idle)
				f.wait_until_idle();
			EXPECT_TRUE(complete_with(op, 7));
		}};
		helsim::RunReport report = f.machine.run();
		completer.join();
		helsim::test::expect_clean(report);
		return report;
	};
	helsim::testing::for_each_seed(
			[&](std::uint64_t seed) {
				helsim::RunReport early = run(seed, false);
				helsim::RunReport idle = run(seed, true);
				EXPECT_EQ(early.trace_hash, idle.trace_hash);
				EXPECT_EQ(early.simulated_time_ns, idle.simulated_time_ns);
				EXPECT_EQ(early.counters.context_switches, idle.counters.context_switches);
			},
			8);
}

// A kHelSubmitCancel by tag ends the operation: one kHelErrCancelled completion, the hook once,
// the machine no longer waits for the host thread, whose complete() then finds it ended.
TEST(ExtensionOutsideCompletion, CancellationByTagEndsAHeldOperationOnce) {
	auto check = [](helsim::MachineConfig config) {
		Fixture f{std::move(config)};
		f.machine.spawn("submitter", [](std::span<const HelHandle>) {
			helsim::Dispatcher d;
			d.submit(kOutside, 1, OutsideRequest{77});
			d.submit(kHelSubmitCancel, 0, HelSqCancel{77});
			d.flush();
			helsim::Element element = wait_context(d, 1);
			EXPECT_EQ(element.error(), kHelErrCancelled);
			element.release();
		});
		helsim::RunReport report = f.machine.run();
		helsim::test::expect_clean(report);
		EXPECT_EQ(report.counters.operations_completed, report.counters.operations_submitted);
		EXPECT_EQ(g_cancel_hooks.load(), 1);
		AsyncOperation op = f.mailbox.take();
		EXPECT_TRUE(op.ended());
		EXPECT_FALSE(complete_with(op, 1));
	};
	check({});
	helsim::testing::for_each_seed(
			[&](std::uint64_t seed) { check(helsim::testing::deterministic(seed)); }, 8);
}

// The submitter ends with the operation still held; the machine is destroyed. The teardown ends
// the operation once (the hook runs once) and a host thread's complete() returns false: in
// threads mode called from the hook's side, in deterministic mode blocked in it since before
// the teardown (waiting for an idle point that never comes), which the teardown releases before
// the hook runs, so that the hook may join it.
TEST(ExtensionOutsideCompletion, TeardownEndsAHeldOperationOnce) {
	for (bool deterministic : {false, true}) {
		SCOPED_TRACE(deterministic ? "deterministic" : "threads");
		std::mutex mutex;
		std::condition_variable cv;
		bool cancelled = false;
		bool completed = true;
		std::thread completer;
		{
			Fixture f{deterministic ? helsim::testing::deterministic(5) : helsim::MachineConfig{}};
			f.machine.spawn("submitter", [](std::span<const HelHandle>) {
				helsim::Dispatcher d;
				d.submit(kOutside, 1, OutsideRequest{0});
				d.flush();
			});
			completer = std::thread{[&] {
				AsyncOperation op = f.mailbox.take();
				if (!deterministic) {
					std::unique_lock lock{mutex};
					cv.wait(lock, [&] { return cancelled; });
				}
				completed = complete_with(op, 3);
			}};
			g_on_cancel = [&] {
				{
					std::lock_guard lock{mutex};
					cancelled = true;
				}
				cv.notify_all();
				// The host thread lets go of its handle before the machine is gone.
				completer.join();
			};
			helsim::RunReport report = f.machine.run();
			EXPECT_FALSE(report.stuck) << report.to_string();
			EXPECT_EQ(report.operations_pending(), 1u) << report.to_string();
		}
		EXPECT_FALSE(completer.joinable());
		EXPECT_FALSE(completed);
		EXPECT_EQ(g_cancel_hooks.load(), 1);
	}
}

} // namespace
