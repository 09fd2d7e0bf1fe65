// stamped_send: a new stream action, prototyped with helsim/extension.hpp (docs/extending.md,
// "2. A new stream action").
//
// A sender submits two kernel-stamped sends and tells the receiver; the receiver waits
// kDelayNs on the machine's clock before it posts each receive (recvInline, then
// recvToBuffer), so each message waits at least that long on the stream. The receiver checks
// the bytes and that the kernel's stamps report the wait. Exits non-zero if anything is off.
#include <cstdint>
#include <cstdio>
#include <span>
#include <string_view>

#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/ipc.hpp>
#include <helsim/machine.hpp>

#include "stamped_send.hpp"

namespace {

constexpr std::uint64_t kDelayNs = 200'000;
constexpr std::string_view kMessages[] = {"stamped by the kernel", "into a receive buffer"};

bool g_ok = true;

void expect(bool condition, const char *what) {
	if (!condition) {
		std::printf("FAILED: %s\n", what);
		g_ok = false;
	}
}

// How many sends the sender has submitted: the receiver starts each delay after one.
int g_submitted = 0;

void sender(HelHandle lane) {
	helsim::Dispatcher dispatcher;
	for (std::uintptr_t i = 0; i < 2; ++i) {
		helsim::ipc::submit(dispatcher, lane, i,
				stamped_send::send_stamped(kMessages[i].data(), kMessages[i].size()));
		dispatcher.flush(); // submitted before the receiver starts its delay
		__atomic_store_n(&g_submitted, static_cast<int>(i + 1), __ATOMIC_RELEASE);
		expect(helFutexWake(&g_submitted, 1) == kHelErrNone, "helFutexWake");
		auto [sent] = helsim::ipc::parse<helsim::ipc::Leaf<helsim::ipc::SimpleResult>>(
				dispatcher.wait_for(i, [](helsim::Element) {}));
		expect(sent.error == kHelErrNone, "sendStamped completed");
	}
}

// Sleeps kDelayNs of the machine's time once the sender has submitted `count` sends.
void wait_then_delay(int count) {
	int seen;
	while ((seen = __atomic_load_n(&g_submitted, __ATOMIC_ACQUIRE)) < count)
		helFutexWait(&g_submitted, seen, kHelWaitInfinite);
	std::uint64_t now = 0;
	helGetClock(&now);
	int never = 0;
	expect(helFutexWait(&never, 0, static_cast<std::int64_t>(now + kDelayNs)) == kHelErrTimeout,
			"the delay ends in a timeout");
}

void check(const char *receive, std::span<const std::byte> received, std::string_view message) {
	auto stamped = stamped_send::parse(received);
	expect(stamped.has_value(), "the header arrived");
	if (!stamped)
		return;
	std::string_view payload{reinterpret_cast<const char *>(stamped->payload.data()),
			stamped->payload.size()};
	std::printf("%s: \"%.*s\", waited %llu ns on the stream (receiver's delay: %llu ns)\n", receive,
			static_cast<int>(payload.size()), payload.data(),
			static_cast<unsigned long long>(stamped->waited_ns()),
			static_cast<unsigned long long>(kDelayNs));
	expect(payload == message, "the sender's bytes follow the header");
	expect(stamped->header.submitted_ns <= stamped->header.paired_ns, "stamps in order");
	expect(stamped->waited_ns() >= kDelayNs, "the stamps cover the receiver's delay");
}

void receiver(HelHandle lane) {
	helsim::Dispatcher dispatcher;
	wait_then_delay(1);
	auto inline_exchange = helsim::ipc::exchange_sync(dispatcher, lane, helsim::ipc::recv_inline());
	auto &[received] = inline_exchange.results;
	expect(received.error == kHelErrNone, "recvInline completed");
	check("recvInline", received.data, kMessages[0]);

	wait_then_delay(2);
	std::byte buffer[64];
	auto buffer_exchange = helsim::ipc::exchange_sync(dispatcher, lane,
			helsim::ipc::recv_buffer(buffer, sizeof(buffer)));
	auto &[length] = buffer_exchange.results;
	expect(length.error == kHelErrNone, "recvToBuffer completed");
	check("recvToBuffer", std::span{buffer, length.length}, kMessages[1]);
}

} // namespace

int main() {
	helsim::Machine machine;
	stamped_send::install(machine);
	HelHandle sender_lane, receiver_lane;
	{
		auto host = machine.attach();
		expect(helCreateStream(&sender_lane, &receiver_lane, 0) == kHelErrNone, "helCreateStream");
	}
	machine.spawn("sender", [](std::span<const HelHandle> h) { sender(h[0]); }, {sender_lane});
	machine.spawn("receiver", [](std::span<const HelHandle> h) { receiver(h[0]); },
			{receiver_lane});
	helsim::RunReport report = machine.run();
	std::printf("\nrun report:\n%s", report.to_string().c_str());
	expect(!report.stuck && report.leaks.empty(), "a clean run");
	expect(report.operations_pending() == 0, "every operation completed");
	return g_ok ? 0 : 1;
}
