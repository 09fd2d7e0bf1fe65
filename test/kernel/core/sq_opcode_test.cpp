// Extension SQ opcodes (helsim::ext::register_sq_opcode): elements submitted through a queue's
// SQ reach the handler with a copy of their payload and complete at once or later, exactly
// once; registration refuses what the table cannot hold.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <vector>

#include <helsim/dispatcher.hpp>
#include <helsim/extension.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>
#include <helsim/testing.hpp>

#include "../../support.hpp"

namespace {

using helsim::ext::Caller;
using helsim::ext::kFirstExtensionSqOpcode;
using helsim::ext::kSqOpcodeSlots;
using helsim::ext::SqSubmission;

constexpr std::uint32_t kTriple = kFirstExtensionSqOpcode;
constexpr std::uint32_t kLater = kFirstExtensionSqOpcode + 1;
constexpr std::uint32_t kRefuse = kFirstExtensionSqOpcode + 2;
constexpr std::uint32_t kHuge = kFirstExtensionSqOpcode + 3;
constexpr std::uintptr_t kSubmitError = ~std::uintptr_t{0};

struct TripleRequest {
	std::uint64_t value;
};

struct TripleResult {
	HelError error;
	int reserved;
	std::uint64_t value;
};

// Completes at once with three times the payload's value.
HelError triple_handler(Caller &, const SqSubmission &submission) {
	TripleRequest request;
	if (submission.payload().size() < sizeof(request))
		return kHelErrBufferTooSmall;
	std::memcpy(&request, submission.payload().data(), sizeof(request));
	TripleResult result{kHelErrNone, 0, request.value * 3};
	submission.complete(std::as_bytes(std::span{&result, 1}));
	return kHelErrNone;
}

struct LaterRequest {
	std::uint64_t cancellation_tag;
	std::uint64_t delay_ns; // 0: completes only when cancelled
};

std::atomic<int> g_cancelled{0};

// Starts an operation that the machine's timer completes `delay_ns` later, if nothing
// cancels it first.
HelError later_handler(Caller &caller, const SqSubmission &submission) {
	LaterRequest request;
	if (submission.payload().size() < sizeof(request))
		return kHelErrBufferTooSmall;
	std::memcpy(&request, submission.payload().data(), sizeof(request));
	helsim::ext::AsyncOperation op =
			submission.start(request.cancellation_tag, [] { g_cancelled.fetch_add(1); });
	if (request.delay_ns)
		caller.after(request.delay_ns, [op] { op.complete(kHelErrNone); });
	return kHelErrNone;
}

HelError refusing_handler(Caller &, const SqSubmission &) { return kHelErrIllegalArgs; }

HelError never_called(Caller &, const SqSubmission &) {
	ADD_FAILURE() << "an opcode whose result cannot fit reached its handler";
	return kHelErrNone;
}

void install(helsim::Machine &machine) {
	helsim::ext::register_sq_opcode(machine, kTriple, "test.triple", sizeof(TripleResult),
			triple_handler);
	helsim::ext::register_sq_opcode(machine, kLater, "test.later", sizeof(HelSimpleResult),
			later_handler);
	helsim::ext::register_sq_opcode(machine, kRefuse, "test.refuse", sizeof(HelSimpleResult),
			refusing_handler);
	helsim::ext::register_sq_opcode(machine, kHuge, "test.huge", 8192, never_called);
}

helsim::Element wait_context(helsim::Dispatcher &d, std::uintptr_t context) {
	return d.wait_for(context, [](helsim::Element e) {
		ADD_FAILURE() << "unexpected completion, context " << e.context();
	});
}

// Runs `body` on a simulated thread and checks that the run ended clean: nothing pending,
// every operation completed exactly once.
helsim::RunReport run(helsim::MachineConfig config, std::function<void()> body) {
	helsim::Machine machine{config};
	install(machine);
	machine.spawn("user", [&](std::span<const HelHandle>) { body(); });
	helsim::RunReport report = machine.run();
	helsim::test::expect_clean(report);
	EXPECT_EQ(report.counters.operations_completed, report.counters.operations_submitted);
	return report;
}

void complete_at_once() {
	helsim::Dispatcher d;
	d.submit(kTriple, 7, TripleRequest{14});
	d.flush();
	helsim::Element element = wait_context(d, 7);
	EXPECT_EQ(element.error(), kHelErrNone);
	EXPECT_EQ(element.as<TripleResult>().value, 42u);
	element.release();
}

TEST(ExtensionSqOpcode, CompletesAtOnceInBothModes) {
	auto report = run({}, complete_at_once);
	EXPECT_EQ(report.counters.operations_submitted, 1u);
	helsim::testing::for_each_seed(
			[](std::uint64_t seed) { run(helsim::testing::deterministic(seed), complete_at_once); },
			4);
}

TEST(ExtensionSqOpcode, CompletesLaterThroughTheTimer) {
	run(helsim::testing::deterministic(5), [] {
		helsim::Dispatcher d;
		std::uint64_t before = 0, after = 0;
		ASSERT_EQ(helGetClock(&before), kHelErrNone);
		d.submit(kLater, 3, LaterRequest{0, 50'000});
		d.flush();
		helsim::Element element = wait_context(d, 3);
		EXPECT_EQ(element.error(), kHelErrNone);
		element.release();
		ASSERT_EQ(helGetClock(&after), kHelErrNone);
		EXPECT_GE(after - before, 50'000u);
	});
}

TEST(ExtensionSqOpcode, CancelledByTagExactlyOnce) {
	g_cancelled = 0;
	auto report = run({}, [] {
		helsim::Dispatcher d;
		d.submit(kLater, 4, LaterRequest{99, 0});
		d.submit(kHelSubmitCancel, 0, HelSqCancel{99});
		d.flush();
		helsim::Element element = wait_context(d, 4);
		EXPECT_EQ(element.error(), kHelErrCancelled);
		element.release();
		// A second cancellation finds nothing to cancel.
		d.submit(kHelSubmitCancel, 0, HelSqCancel{99});
		d.submit(kTriple, 5, TripleRequest{1});
		d.flush();
		wait_context(d, 5).release();
	});
	EXPECT_EQ(g_cancelled.load(), 1);
	EXPECT_EQ(report.counters.operations_submitted, 2u);
}

TEST(ExtensionSqOpcode, SubmissionErrorsAreReportedOnTheQueue) {
	auto report = run({}, [] {
		helsim::Dispatcher d;
		auto expect_error = [&](HelError expected) {
			helsim::Element element = wait_context(d, kSubmitError);
			EXPECT_EQ(element.error(), expected);
			element.release();
		};
		// The handler's own error: a payload too short for its request.
		d.submit(kTriple, 1, std::span<const std::byte>{});
		d.flush();
		expect_error(kHelErrBufferTooSmall);
		d.submit(kRefuse, 2, std::span<const std::byte>{});
		d.flush();
		expect_error(kHelErrIllegalArgs);
		// A result that can never fit a 4 KiB chunk: refused before the handler.
		d.submit(kHuge, 3, std::span<const std::byte>{});
		d.flush();
		expect_error(kHelErrQueueTooSmall);
		// Unregistered opcodes, in and beyond the extension range.
		d.submit(kFirstExtensionSqOpcode + 100, 4, std::span<const std::byte>{});
		d.flush();
		expect_error(kHelErrIllegalSyscall);
		d.submit(kSqOpcodeSlots, 5, std::span<const std::byte>{});
		d.flush();
		expect_error(kHelErrIllegalSyscall);
	});
	EXPECT_EQ(report.counters.operations_submitted, 0u);
	EXPECT_EQ(report.counters.completions_posted, 5u); // the submission errors alone
}

TEST(ExtensionSqOpcode, RegisterRejectsBadOpcodesSizesAndHandlers) {
	helsim::Machine machine;
	auto reg = [&](std::uint32_t opcode, std::size_t result_size, helsim::ext::SqHandler handler) {
		helsim::ext::register_sq_opcode(machine, opcode, "bad", result_size, handler);
	};
	constexpr std::size_t kSimple = sizeof(HelSimpleResult);
	EXPECT_THROW(reg(kFirstExtensionSqOpcode - 1, kSimple, refusing_handler),
			std::invalid_argument);
	EXPECT_THROW(reg(kHelSubmitAsyncNop, kSimple, refusing_handler), std::invalid_argument);
	EXPECT_THROW(reg(kHelSubmitCancel, kSimple, refusing_handler), std::invalid_argument);
	EXPECT_THROW(reg(kSqOpcodeSlots, kSimple, refusing_handler), std::invalid_argument);
	EXPECT_THROW(reg(kTriple, kSimple, nullptr), std::invalid_argument);
	EXPECT_THROW(reg(kTriple, kSimple - 1, refusing_handler), std::invalid_argument);
	EXPECT_NO_THROW(reg(kTriple, kSimple, refusing_handler));
	EXPECT_THROW(reg(kTriple, kSimple, triple_handler), std::invalid_argument);
	EXPECT_NO_THROW(reg(kSqOpcodeSlots - 1, kSimple, refusing_handler));
}

} // namespace
