// The asynchronous checksum syscall of examples/async_checksum, and through it
// helsim::ext::AsyncOperation: completion later, errors, cancellation, exactly-once accounting,
// teardown, fault injection, tracing and scheduling points, in both modes.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <helsim/dispatcher.hpp>
#include <helsim/extension.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>
#include <helsim/testing.hpp>

#include "async_checksum.hpp"

namespace {

using async_checksum::ChecksumResult;
using async_checksum::helsim_checksum;

constexpr std::uint32_t kQueueRightsWithoutInvoke = kHelRightWait | kHelRightSignal;

std::vector<std::byte> pattern(std::size_t n) {
	std::vector<std::byte> bytes(n);
	for (std::size_t i = 0; i < n; ++i)
		bytes[i] = static_cast<std::byte>(i * 131 + 7);
	return bytes;
}

// Waits for the completion with `context` and returns its result.
ChecksumResult wait_result(helsim::Dispatcher &d, std::uintptr_t context) {
	helsim::Element element = d.wait_for(context,
			[](helsim::Element) { ADD_FAILURE() << "a completion nobody asked for"; });
	// A cancelled operation's completion is a HelSimpleResult alone: the error first.
	ChecksumResult result{element.error(), 0, 0, 0};
	if (result.error == kHelErrNone)
		result = element.as<ChecksumResult>();
	element.release();
	return result;
}

// Sleeps the calling simulated thread for `ns` of the machine's time.
void sleep_for(std::uint64_t ns) {
	std::uint64_t now = 0;
	ASSERT_EQ(helGetClock(&now), kHelErrNone);
	helsim::Dispatcher d;
	d.submit(kHelSubmitAwaitClock, 1, HelSqAwaitClock{now + ns, 0});
	d.flush();
	ASSERT_TRUE(d.wait());
}

// Runs `body` on a simulated thread of a machine with the checksum call and checks that the
// run ended clean: nothing pending, every completion counted once, nothing leaked.
helsim::RunReport run(helsim::MachineConfig config, std::function<void()> body) {
	helsim::Machine machine{config};
	async_checksum::install(machine);
	machine.spawn("user", [&](std::span<const HelHandle>) { body(); });
	helsim::RunReport report = machine.run();
	EXPECT_FALSE(report.stuck) << report.to_string();
	for (const auto &t : report.threads)
		EXPECT_EQ(t.outcome, helsim::ThreadOutcome::returned) << t.name << ": " << t.message;
	EXPECT_EQ(report.operations_pending(), 0u) << report.to_string();
	EXPECT_EQ(report.counters.completions_posted, report.counters.operations_completed);
	EXPECT_TRUE(report.leaks.empty()) << report.to_string();
	return report;
}

void happy_path() {
	helsim::Dispatcher d;
	for (std::size_t size :
			{std::size_t{0}, std::size_t{1}, std::size_t{4096}, std::size_t{70'000}}) {
		auto bytes = pattern(size);
		ASSERT_EQ(helsim_checksum(d.queue(), 10 + size, bytes.data(), size, 0), kHelErrNone);
		ChecksumResult result = wait_result(d, 10 + size);
		EXPECT_EQ(result.error, kHelErrNone);
		EXPECT_EQ(result.checksum, async_checksum::adler32(bytes)) << size;
		EXPECT_EQ(result.length, size);
	}
}

TEST(ExtendingAsyncChecksum, ChecksumsInBothModes) {
	auto report = run({}, happy_path);
	EXPECT_EQ(report.counters.operations_submitted, 4u);
	helsim::testing::for_each_seed(
			[](std::uint64_t seed) { run(helsim::testing::deterministic(seed), happy_path); }, 8);
}

TEST(ExtendingAsyncChecksum, AdlerMatchesKnownValue) {
	const char text[] = "Wikipedia";
	EXPECT_EQ(async_checksum::adler32(std::as_bytes(std::span{text, 9})), 0x11E60398u);
}

TEST(ExtendingAsyncChecksum, CompletesLaterInVirtualTime) {
	run(helsim::testing::deterministic(3), [] {
		helsim::Dispatcher d;
		auto bytes = pattern(8000);
		std::uint64_t before = 0, after = 0;
		ASSERT_EQ(helGetClock(&before), kHelErrNone);
		ASSERT_EQ(helsim_checksum(d.queue(), 1, bytes.data(), bytes.size(), 0), kHelErrNone);
		EXPECT_EQ(wait_result(d, 1).error, kHelErrNone);
		ASSERT_EQ(helGetClock(&after), kHelErrNone);
		// The engine's latency and per-byte time, and the caller's charged copy.
		EXPECT_GE(after - before,
				async_checksum::kLatencyNs + 8000 / async_checksum::kBytesPerNs +
						8000 / async_checksum::kCopyBytesPerNs);
	});
}

TEST(ExtendingAsyncChecksum, SubmissionErrorsStartNothing) {
	auto body = [] {
		helsim::Dispatcher d;
		auto bytes = pattern(64);
		EXPECT_EQ(helsim_checksum(d.queue(), 1, nullptr, 64, 0), kHelErrFault);
		EXPECT_EQ(helsim_checksum(d.queue(), 1, reinterpret_cast<const void *>(16), 64, 0),
				kHelErrFault);
		EXPECT_EQ(helsim_checksum(d.queue(), 1, bytes.data(), async_checksum::kMaxChecksumBytes + 1,
						  0),
				kHelErrIllegalArgs);
		EXPECT_EQ(helsim_checksum(12345, 1, bytes.data(), 64, 0), kHelErrNoDescriptor);
		HelHandle event;
		ASSERT_EQ(helCreateOneshotEvent(&event), kHelErrNone);
		EXPECT_EQ(helsim_checksum(event, 1, bytes.data(), 64, 0), kHelErrBadDescriptor);
		HelHandle no_invoke;
		ASSERT_EQ(helTransferDescriptor(d.queue(), kHelThisUniverse, kHelTransferDescriptorOut,
						  kQueueRightsWithoutInvoke, 0, &no_invoke),
				kHelErrNone);
		EXPECT_EQ(helsim_checksum(no_invoke, 1, bytes.data(), 64, 0), kHelErrBadRights);
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, no_invoke), kHelErrNone);
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, event), kHelErrNone);
	};
	auto report = run({}, body);
	EXPECT_EQ(report.counters.operations_submitted, 0u);
	EXPECT_EQ(report.counters.completions_posted, 0u);
}

constexpr std::uint64_t kTag = 77;

void cancel_before_the_engine() {
	helsim::Dispatcher d;
	auto bytes = pattern(async_checksum::kMaxChecksumBytes); // 263 us of engine time
	ASSERT_EQ(helsim_checksum(d.queue(), 5, bytes.data(), bytes.size(), kTag), kHelErrNone);
	d.submit(kHelSubmitCancel, 0, HelSqCancel{kTag});
	d.flush();
	EXPECT_EQ(wait_result(d, 5).error, kHelErrCancelled);
	// The engine's timer fires after the cancellation and posts nothing.
	sleep_for(2 * (async_checksum::kLatencyNs + bytes.size() / async_checksum::kBytesPerNs));
	EXPECT_FALSE(d.poll().has_value());
}

// Deterministic mode on one CPU only: there the cancellation surely comes before the engine's
// time is up. In threads mode that is a race with the host's clock, and with a second, idle
// CPU its virtual time may run ahead to the engine's timer.
TEST(ExtendingAsyncChecksum, CancelledByTagExactlyOnce) {
	helsim::testing::for_each_seed(
			[](std::uint64_t seed) {
				auto report =
						run(helsim::testing::deterministic(seed, 1), cancel_before_the_engine);
				EXPECT_EQ(report.counters.operations_submitted, 2u) << "the checksum and the sleep";
				EXPECT_EQ(report.counters.operations_completed, 2u);
			},
			4);
}

TEST(ExtendingAsyncChecksum, CancelAfterCompletionChangesNothing) {
	run(helsim::testing::deterministic(1), [] {
		helsim::Dispatcher d;
		auto bytes = pattern(100);
		ASSERT_EQ(helsim_checksum(d.queue(), 5, bytes.data(), bytes.size(), kTag), kHelErrNone);
		EXPECT_EQ(wait_result(d, 5).error, kHelErrNone);
		d.submit(kHelSubmitCancel, 0, HelSqCancel{kTag});
		d.flush();
		sleep_for(1000);
		EXPECT_FALSE(d.poll().has_value());
	});
}

TEST(ExtendingAsyncChecksum, DelayedCompletionsStillArriveOnce) {
	helsim::testing::for_each_seed(
			[](std::uint64_t seed) {
				auto config = helsim::testing::deterministic(seed);
				config.inject.delay_completion_ppm = 1'000'000;
				auto report = run(config, happy_path);
				EXPECT_EQ(report.counters.injected_delays, 4u);
			},
			4);
}

TEST(ExtendingAsyncChecksum, TracedAsAFlowFromSubmissionToCompletion) {
	auto config = helsim::testing::deterministic(2);
	config.trace = true;
	helsim::Machine machine{config};
	async_checksum::install(machine);
	machine.spawn("user", [](std::span<const HelHandle>) {
		helsim::Dispatcher d;
		auto bytes = pattern(16);
		ASSERT_EQ(helsim_checksum(d.queue(), 9, bytes.data(), bytes.size(), 0), kHelErrNone);
		EXPECT_EQ(wait_result(d, 9).error, kHelErrNone);
	});
	machine.run();
	std::string trace = machine.trace_json();
	EXPECT_NE(trace.find("helsimChecksum"), std::string::npos);
	EXPECT_NE(trace.find("\"ph\":\"s\""), std::string::npos) << "the submission starts a flow";
	EXPECT_NE(trace.find("\"ph\":\"f\""), std::string::npos) << "the completion ends it";
}

// ---------------------------------------------------------------- AsyncOperation itself

constexpr std::uint32_t kPark = helsim::kFirstExtensionSyscall + 41;

std::mutex g_mutex;
std::vector<helsim::ext::AsyncOperation> g_parked;
std::atomic<int> g_cancel_hooks{0};
std::vector<std::string> g_misuse;

// args: queue, context, tag, result size. Starts an operation that only a cancellation or the
// teardown ends, and checks complete()'s contract on it.
HelError park(helsim::ext::Caller &caller, const HelWord *args, HelWord *) {
	helsim::ext::AsyncOperation operation;
	helsim::ext::AsyncRequest request{static_cast<HelHandle>(args[0]), args[1], args[2], args[3],
			[] { g_cancel_hooks.fetch_add(1); }};
	if (HelError e = caller.start(request, operation); e != kHelErrNone)
		return e;
	std::byte too_small[4]{};
	std::vector<std::byte> too_large(args[3] + 8);
	std::lock_guard lock{g_mutex};
	for (auto payload :
			{std::span<const std::byte>{too_small}, std::span<const std::byte>{too_large}}) {
		try {
			operation.complete(payload);
		} catch (const std::invalid_argument &e) {
			g_misuse.push_back(e.what());
		}
	}
	g_parked.push_back(operation);
	return kHelErrNone;
}

void reset_park() {
	std::lock_guard lock{g_mutex};
	g_parked.clear();
	g_misuse.clear();
	g_cancel_hooks = 0;
}

TEST(ExtendingAsyncChecksum, OperationContract) {
	reset_park();
	{
		helsim::Machine machine;
		helsim::ext::register_syscall(machine, kPark, "park", park);
		machine.spawn("user", [](std::span<const HelHandle>) {
			helsim::Dispatcher d{{8, 8, 128}};
			EXPECT_EQ(helSyscall4(kPark, d.queue(), 1, 0, 4), kHelErrIllegalArgs);
			EXPECT_EQ(helSyscall4(kPark, d.queue(), 1, 0, 4096), kHelErrQueueTooSmall);
			// Cancelled by tag: the hook runs, then one kHelErrCancelled completion.
			ASSERT_EQ(helSyscall4(kPark, d.queue(), 2, kTag, sizeof(HelSimpleResult)), kHelErrNone);
			d.submit(kHelSubmitCancel, 0, HelSqCancel{kTag});
			d.flush();
			helsim::Element element = d.wait_for(2, [](helsim::Element) {});
			EXPECT_EQ(element.as<HelSimpleResult>().error, kHelErrCancelled);
			EXPECT_EQ(g_cancel_hooks.load(), 1);
			element.release();
			// Left pending: the teardown ends it.
			ASSERT_EQ(helSyscall4(kPark, d.queue(), 3, 0, sizeof(HelSimpleResult)), kHelErrNone);
		});
		helsim::RunReport report = machine.run();
		EXPECT_EQ(report.counters.operations_submitted, 2u);
		EXPECT_EQ(report.operations_pending(), 1u) << "the parked one is reported pending";
		std::lock_guard lock{g_mutex};
		ASSERT_EQ(g_parked.size(), 2u);
		EXPECT_TRUE(g_parked[0].ended());
		EXPECT_FALSE(g_parked[0].complete(kHelErrNone)) << "a cancelled operation stays ended";
		EXPECT_FALSE(g_parked[1].ended());
		EXPECT_EQ(g_parked[1].context(), 3u);
		EXPECT_EQ(g_misuse.size(), 4u) << "payloads outside [HelSimpleResult, result size]";
	}
	std::lock_guard lock{g_mutex};
	EXPECT_EQ(g_cancel_hooks.load(), 2) << "the teardown cancelled the parked operation";
	EXPECT_TRUE(g_parked[1].ended());
	EXPECT_FALSE(g_parked[1].complete(kHelErrNone));
	g_parked.clear();
	EXPECT_THROW(helsim::ext::AsyncOperation{}.complete(kHelErrNone), std::logic_error);
}

// ---------------------------------------------------------------- scheduling points

constexpr std::uint32_t kRecord = helsim::kFirstExtensionSyscall + 42;
std::vector<std::string> g_order;

HelError record(helsim::ext::Caller &caller, const HelWord *, HelWord *) {
	std::lock_guard lock{g_mutex};
	g_order.push_back(caller.thread_name());
	return kHelErrNone;
}

// Two threads on one CPU that make nothing but extension calls: they interleave only if those
// calls are scheduling points, as built-in calls are.
TEST(ExtendingAsyncChecksum, ExtensionCallsAreSchedulingPoints) {
	int interleaved = 0;
	for (std::uint64_t seed = 0; seed < 8; ++seed) {
		{
			std::lock_guard lock{g_mutex};
			g_order.clear();
		}
		auto config = helsim::testing::deterministic(seed, 1);
		config.preempt_at_syscall_ppm = 500'000;
		helsim::Machine machine{config};
		helsim::ext::register_syscall(machine, kRecord, "record", record);
		for (const char *name : {"a", "b"})
			machine.spawn(name, [](std::span<const HelHandle>) {
				for (int i = 0; i < 8; ++i)
					ASSERT_EQ(helSyscall0(kRecord), kHelErrNone);
			});
		EXPECT_FALSE(machine.run().stuck);
		std::lock_guard lock{g_mutex};
		ASSERT_EQ(g_order.size(), 16u);
		int switches = 0;
		for (std::size_t i = 1; i < g_order.size(); ++i)
			switches += g_order[i] != g_order[i - 1];
		interleaved += switches > 1;
	}
	EXPECT_GT(interleaved, 0);
}

} // namespace
