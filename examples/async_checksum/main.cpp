// async_checksum: an asynchronous syscall that completes later, prototyped with
// helsim/extension.hpp (docs/extending.md, "1. An asynchronous syscall").
//
// A simulated thread checksums a buffer through helsimChecksum, compares the result with the
// same checksum computed in user space, then starts a second one and cancels it by its tag.
// Exits non-zero if anything is off.
#include <cstdint>
#include <cstdio>
#include <vector>

#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>

#include "async_checksum.hpp"

namespace {

bool g_ok = true;

void expect(bool condition, const char *what) {
	if (!condition) {
		std::printf("FAILED: %s\n", what);
		g_ok = false;
	}
}

void body(std::span<const HelHandle>) {
	std::vector<std::byte> buffer(64 * 1024);
	for (std::size_t i = 0; i < buffer.size(); ++i)
		buffer[i] = static_cast<std::byte>(i * 7 + 3);

	helsim::Dispatcher dispatcher;
	std::uint64_t before = 0, after = 0;
	helGetClock(&before);
	HelError e =
			async_checksum::helsim_checksum(dispatcher.queue(), 1, buffer.data(), buffer.size(), 0);
	expect(e == kHelErrNone, "helsimChecksum submitted");
	helsim::Element element = dispatcher.wait_for(1, [](helsim::Element) {});
	auto result = element.as<async_checksum::ChecksumResult>();
	element.release();
	helGetClock(&after);
	std::uint32_t expected = async_checksum::adler32(buffer);
	std::printf("checksum of %u bytes: %#x (user space: %#x), %llu ns after submission\n",
			result.length, result.checksum, expected,
			static_cast<unsigned long long>(after - before));
	expect(result.error == kHelErrNone && result.checksum == expected, "the kernel's checksum");

	// A second one, cancelled by its tag before the engine is done.
	constexpr std::uint64_t kTag = 42;
	e = async_checksum::helsim_checksum(dispatcher.queue(), 2, buffer.data(), buffer.size(), kTag);
	expect(e == kHelErrNone, "second helsimChecksum submitted");
	dispatcher.submit(kHelSubmitCancel, 0, HelSqCancel{kTag});
	dispatcher.flush();
	element = dispatcher.wait_for(2, [](helsim::Element) {});
	// A cancelled operation's completion is a HelSimpleResult alone: its error comes first.
	HelError cancelled = element.error();
	element.release();
	std::printf("cancelled checksum: error %d (kHelErrCancelled is %d)\n", cancelled,
			kHelErrCancelled);
	// In threads mode the engine may have finished first: either outcome is one completion.
	expect(cancelled == kHelErrCancelled || cancelled == kHelErrNone,
			"the cancelled checksum completed once");

	e = async_checksum::helsim_checksum(dispatcher.queue(), 3, nullptr, 16, 0);
	std::printf("null buffer: error %d (kHelErrFault is %d)\n", e, kHelErrFault);
	expect(e == kHelErrFault, "a bad pointer is kHelErrFault");
}

} // namespace

int main() {
	helsim::Machine machine;
	async_checksum::install(machine);
	machine.spawn("user", body);
	helsim::RunReport report = machine.run();
	std::printf("\nrun report:\n%s", report.to_string().c_str());
	expect(!report.stuck && report.leaks.empty(), "a clean run");
	expect(report.operations_pending() == 0, "every operation completed");
	return g_ok ? 0 : 1;
}
