// page_transfer: a zero-copy page-transfer send, prototyped with helsim/extension.hpp
// (docs/extending.md, "Handles and pages").
//
// A sender fills four pages of its memory and sends them with sendPages; a receiver gets a
// new memory object with recvPages and maps it. The receiver checks the bytes, the sender
// that its own range now reads as zero pages (the frames moved: nothing was copied). Exits
// non-zero if anything is off.
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <span>

#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/ipc.hpp>
#include <helsim/machine.hpp>

#include "page_transfer.hpp"

namespace {

constexpr std::size_t kPage = 4096;
constexpr std::size_t kSize = 4 * kPage;
constexpr char kMessage[] = "moved, not copied";

bool g_ok = true;

void expect(bool condition, const char *what) {
	if (!condition) {
		std::printf("FAILED: %s\n", what);
		g_ok = false;
	}
}

char *map(HelHandle memory) {
	void *p = nullptr;
	expect(helMapMemory(memory, kHelNullHandle, nullptr, 0, kSize,
				   kHelMapProtRead | kHelMapProtWrite, &p) == kHelErrNone,
			"helMapMemory");
	return static_cast<char *>(p);
}

void sender(HelHandle lane) {
	HelHandle memory;
	expect(helAllocateMemory(kSize, 0, nullptr, &memory) == kHelErrNone, "helAllocateMemory");
	char *p = map(memory);
	for (std::size_t page = 0; page < kSize / kPage; ++page)
		std::memcpy(p + page * kPage, kMessage, sizeof(kMessage));
	helsim::Dispatcher dispatcher;
	auto exchange = helsim::ipc::exchange_sync(dispatcher, lane,
			page_transfer::send_pages(memory, 0, kSize));
	auto &[sent] = exchange.results;
	expect(sent.error == kHelErrNone, "sendPages completed");
	bool zero = true;
	for (std::size_t i = 0; i < kSize; ++i)
		zero &= p[i] == 0;
	std::printf("sender: after the transfer its %zu bytes read as %s\n", kSize,
			zero ? "zero pages" : "something else");
	expect(zero, "the sender's range reads as zero pages");
	helUnmapMemory(kHelNullHandle, p, kSize);
	helCloseDescriptor(kHelThisUniverse, memory);
}

void receiver(HelHandle lane) {
	helsim::Dispatcher dispatcher;
	auto exchange = helsim::ipc::exchange_sync(dispatcher, lane, page_transfer::recv_pages());
	auto &[received] = exchange.results;
	expect(received.error == kHelErrNone, "recvPages completed");
	if (received.error != kHelErrNone)
		return;
	char *p = map(received.handle);
	for (std::size_t page = 0; page < kSize / kPage; ++page)
		expect(std::memcmp(p + page * kPage, kMessage, sizeof(kMessage)) == 0,
				"every page arrived");
	std::printf("receiver: handle %lld maps %zu bytes: \"%s\" on each page\n",
			static_cast<long long>(received.handle), kSize, p);
	helUnmapMemory(kHelNullHandle, p, kSize);
	helCloseDescriptor(kHelThisUniverse, received.handle);
}

} // namespace

int main() {
	helsim::Machine machine;
	page_transfer::install(machine);
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
