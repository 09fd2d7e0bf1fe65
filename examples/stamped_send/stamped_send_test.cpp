// examples/stamped_send: a new stream action, the kernel-stamped send (docs/extending.md, 2).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>
#include <utility>

#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/ipc.hpp>
#include <helsim/machine.hpp>
#include <helsim/testing.hpp>

#include "stamped_send.hpp"

namespace {

using namespace stamped_send;
namespace ipc = helsim::ipc;

constexpr std::string_view kMessage = "latency";
constexpr std::uint64_t kDelayNs = 50'000;

std::uint64_t clock_now() {
	std::uint64_t now = 0;
	EXPECT_EQ(helGetClock(&now), kHelErrNone);
	return now;
}

std::string_view text_of(std::span<const std::byte> bytes) {
	return {reinterpret_cast<const char *>(bytes.data()), bytes.size()};
}

// What both threads of a timed exchange record: the clock around the sender's submission and
// around the receiver's, from post to completion.
struct Timeline {
	int submitted = 0; // futex word: the sender has submitted
	std::uint64_t send_before = 0, send_after = 0;
	std::uint64_t recv_before = 0, recv_after = 0;
	HelError send_error = -1;
	HelError recv_error = -1;
	std::byte received[64] = {};
	std::size_t received_length = 0;
};

void timed_sender(HelHandle lane, Timeline &t) {
	helsim::Dispatcher dispatcher;
	t.send_before = clock_now();
	ipc::submit(dispatcher, lane, 1, send_stamped(kMessage.data(), kMessage.size()));
	dispatcher.flush();
	t.send_after = clock_now();
	__atomic_store_n(&t.submitted, 1, __ATOMIC_RELEASE);
	EXPECT_EQ(helFutexWake(&t.submitted, 1), kHelErrNone);
	auto [sent] = ipc::parse<ipc::Leaf<ipc::SimpleResult>>(
			dispatcher.wait_for(1, [](helsim::Element) {}));
	t.send_error = sent.error;
}

// Posts its receive kDelayNs after the sender's submission, into a buffer or inline.
void timed_receiver(HelHandle lane, Timeline &t, bool into_buffer) {
	while (!__atomic_load_n(&t.submitted, __ATOMIC_ACQUIRE))
		helFutexWait(&t.submitted, 0, kHelWaitInfinite);
	int never = 0;
	EXPECT_EQ(helFutexWait(&never, 0, static_cast<std::int64_t>(clock_now() + kDelayNs)),
			kHelErrTimeout);
	helsim::Dispatcher dispatcher;
	t.recv_before = clock_now();
	if (into_buffer) {
		auto exchange = ipc::exchange_sync(dispatcher, lane,
				ipc::recv_buffer(t.received, sizeof(t.received)));
		t.recv_after = clock_now();
		auto &[result] = exchange.results;
		t.recv_error = result.error;
		t.received_length = result.length;
	} else {
		auto exchange = ipc::exchange_sync(dispatcher, lane, ipc::recv_inline());
		t.recv_after = clock_now();
		auto &[result] = exchange.results;
		t.recv_error = result.error;
		ASSERT_LE(result.data.size(), sizeof(t.received));
		std::memcpy(t.received, result.data.data(), result.data.size());
		t.received_length = result.data.size();
	}
}

void expect_clean(const helsim::RunReport &report) {
	EXPECT_FALSE(report.stuck) << report.to_string();
	EXPECT_TRUE(report.leaks.empty()) << report.to_string();
	EXPECT_EQ(report.operations_pending(), 0u) << report.to_string();
}

Timeline run_timed(helsim::MachineConfig config, bool into_buffer) {
	helsim::Machine machine{config};
	install(machine);
	HelHandle a, b;
	{
		auto host = machine.attach();
		EXPECT_EQ(helCreateStream(&a, &b, 0), kHelErrNone);
	}
	Timeline t;
	machine.spawn("sender", [&](std::span<const HelHandle> h) { timed_sender(h[0], t); }, {a});
	machine.spawn("receiver",
			[&](std::span<const HelHandle> h) { timed_receiver(h[0], t, into_buffer); }, {b});
	expect_clean(machine.run());
	return t;
}

// The stamps lie inside the clock readings around each side's submission: submitted_ns is
// the sender's time at decode, paired_ns the receiver's when its receive met the send.
void expect_stamped(const Timeline &t) {
	EXPECT_EQ(t.send_error, kHelErrNone);
	EXPECT_EQ(t.recv_error, kHelErrNone);
	auto stamped = parse(std::span{t.received, t.received_length});
	ASSERT_TRUE(stamped.has_value()) << t.received_length << " bytes";
	EXPECT_EQ(text_of(stamped->payload), kMessage);
	const StampHeader &h = stamped->header;
	EXPECT_LE(t.send_before, h.submitted_ns);
	EXPECT_LE(h.submitted_ns, t.send_after);
	EXPECT_LE(t.recv_before, h.paired_ns);
	EXPECT_LE(h.paired_ns, t.recv_after);
	EXPECT_LE(h.submitted_ns, h.paired_ns);
	EXPECT_GE(stamped->waited_ns(), kDelayNs);
}

TEST(ExtendingStampedSend, IntoRecvInlineInThreadsMode) { expect_stamped(run_timed({}, false)); }

TEST(ExtendingStampedSend, IntoRecvToBufferInThreadsMode) { expect_stamped(run_timed({}, true)); }

TEST(ExtendingStampedSend, TheWaitIsMeasuredInVirtualTimeOnEverySeed) {
	helsim::testing::for_each_seed([](std::uint64_t seed) {
		expect_stamped(run_timed(helsim::testing::deterministic(seed), seed % 2 == 0));
	});
}

// One simulated thread holding both lanes: the cases below pair at once, with no wait.
void on_one_thread(bool installed, void (*body)(HelHandle a, HelHandle b)) {
	helsim::Machine machine;
	if (installed)
		install(machine);
	machine.spawn("both-lanes", [body](std::span<const HelHandle>) {
		HelHandle a, b;
		ASSERT_EQ(helCreateStream(&a, &b, 0), kHelErrNone);
		body(a, b);
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, a), kHelErrNone);
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, b), kHelErrNone);
	});
	expect_clean(machine.run());
}

// Submits a sendStamped of `buffer` on `a`, then `other` on `b`; both errors.
template <typename Other>
std::pair<HelError, HelError> exchange_with(HelHandle a, HelHandle b, const void *buffer,
		std::size_t length, const Other &other) {
	helsim::Dispatcher dispatcher;
	ipc::submit(dispatcher, a, 1, send_stamped(buffer, length));
	ipc::submit(dispatcher, b, 2, other);
	HelError errors[2] = {-1, -1};
	for (int i = 0; i < 2; ++i) {
		std::optional<helsim::Element> element = dispatcher.wait();
		if (!element || element->context() < 1 || element->context() > 2) {
			ADD_FAILURE() << "an unexpected completion";
			break;
		}
		errors[element->context() - 1] = element->error();
	}
	return {errors[0], errors[1]};
}

TEST(ExtendingStampedSend, AHeaderThatDoesNotFitIsBufferTooSmallOnBothSides) {
	on_one_thread(true, [](HelHandle a, HelHandle b) {
		// Room for the bytes, not for the header ahead of them.
		std::byte room[kMessage.size()];
		auto [sent, received] = exchange_with(a, b, kMessage.data(), kMessage.size(),
				ipc::recv_buffer(room, sizeof(room)));
		EXPECT_EQ(sent, kHelErrBufferTooSmall);
		EXPECT_EQ(received, kHelErrBufferTooSmall);
	});
}

TEST(ExtendingStampedSend, AFaultingSenderBufferFailsBothSides) {
	on_one_thread(true, [](HelHandle a, HelHandle b) {
		auto [sent, received] =
				exchange_with(a, b, reinterpret_cast<const void *>(0x10), 16, ipc::recv_inline());
		EXPECT_EQ(sent, kHelErrFault);
		EXPECT_EQ(received, kHelErrRemoteFault);
	});
}

TEST(ExtendingStampedSend, AnActionItDoesNotPairWithIsAMismatch) {
	on_one_thread(true, [](HelHandle a, HelHandle b) {
		auto [sent, other] =
				exchange_with(a, b, kMessage.data(), kMessage.size(), ipc::send_buffer(kMessage));
		EXPECT_EQ(sent, kHelErrTransmissionMismatch);
		EXPECT_EQ(other, kHelErrTransmissionMismatch);
	});
}

TEST(ExtendingStampedSend, DismissDismissesIt) {
	on_one_thread(true, [](HelHandle a, HelHandle b) {
		auto [sent, dismissed] =
				exchange_with(a, b, kMessage.data(), kMessage.size(), ipc::dismiss());
		EXPECT_EQ(sent, kHelErrDismissed);
		EXPECT_EQ(dismissed, kHelErrNone);
	});
}

// Refused submissions, through the 2022-era path that returns the submission's error.
HelError submit_error(HelHandle lane, const HelAction &action) {
	helsim::Dispatcher dispatcher;
	return helSubmitAsync(lane, &action, 1, dispatcher.queue(), 1, 0);
}

TEST(ExtendingStampedSend, SubmissionsItCannotTakeAreRefused) {
	on_one_thread(true, [](HelHandle a, HelHandle) {
		HelAction too_long = send_stamped(kMessage.data(), kMaxPayload + 1).action;
		EXPECT_EQ(submit_error(a, too_long), kHelErrIllegalArgs);
		HelAction ancillary = send_stamped(kMessage.data(), kMessage.size()).action;
		ancillary.flags = kHelItemAncillary;
		EXPECT_EQ(submit_error(a, ancillary), kHelErrIllegalArgs);
	});
}

TEST(ExtendingStampedSend, AMachineWithoutItRefusesTheType) {
	on_one_thread(false, [](HelHandle a, HelHandle) {
		EXPECT_EQ(submit_error(a, send_stamped(kMessage.data(), kMessage.size()).action),
				kHelErrIllegalArgs);
	});
}

} // namespace
