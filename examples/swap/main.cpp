// A swap daemon and a program using swappable memory.
//
// main creates a swap space (helCreateSwapSpace) with a budget of four resident pages
// (helSetSwapBudget) and starts two threads in universes of their own: the daemon gets the
// backing view, the program the swap space handle. The program allocates sixteen pages of
// swappable memory (helAllocateSwappableMemory), writes a pattern into every page, unmaps
// it, and reads everything back through a fresh mapping. Under the budget most pages were
// swapped out meanwhile: the kernel asked the daemon to write them back (SQ ManageMemory,
// kHelManageWriteback, at a swap offset the kernel chose), and the reads fault them back in
// (kHelManageInitialize at the same offset). Last, the program writes "done" into its first
// page and unmaps it again; the daemon stops once that page reached its disk.
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace {

constexpr std::size_t kPage = 4096;
constexpr std::size_t kPages = 16;
constexpr std::size_t kBudget = 4;
constexpr std::uint32_t kRW = kHelMapProtRead | kHelMapProtWrite;

void check(HelError e, const char *what) {
	if (e != kHelErrNone)
		throw helsim::HelException{what, e};
}

std::string pattern(std::size_t page) {
	std::string text;
	while (text.size() < kPage)
		text += "page " + std::to_string(page) + " of the program's data. ";
	text.resize(kPage);
	return text;
}

// Results, checked by main() after the machine has run.
struct Outcome {
	std::size_t written_back = 0, swapped_in = 0;
	bool read_back = false, done_on_disk = false;
} outcome;

helsim::Element call(helsim::Dispatcher &d, std::uint32_t opcode, std::uintptr_t context,
		const auto &payload) {
	d.submit(opcode, context, payload);
	d.flush();
	return d.wait_for(context, [](helsim::Element &&) {});
}

void daemon(HelHandle backing) {
	helsim::Dispatcher d;
	std::vector<char> disk; // the swap device: grows to whatever offset the kernel chooses
	for (std::uintptr_t context = 1;; context += 2) {
		auto request = call(d, kHelSubmitManageMemory, context, HelSqManageMemory{backing})
							   .as<HelManageResult>();
		check(request.error, "ManageMemory");
		if (disk.size() < request.offset + request.length)
			disk.resize(request.offset + request.length);
		char *at = disk.data() + request.offset;
		if (request.type == kHelManageInitialize) {
			check(call(d, kHelSubmitWriteMemory, context + 1,
						  HelSqWriteMemory{backing, request.offset, request.length, at})
							.error(),
					"WriteMemory(backing)");
			check(helUpdateMemory(backing, kHelManageInitialize, request.offset, request.length),
					"helUpdateMemory(Initialize)");
			outcome.swapped_in += request.length / kPage;
			continue;
		}
		check(call(d, kHelSubmitReadMemory, context + 1,
					  HelSqReadMemory{backing, request.offset, request.length, at})
						.error(),
				"ReadMemory(backing)");
		check(helUpdateMemory(backing, kHelManageWriteback, request.offset, request.length),
				"helUpdateMemory(Writeback)");
		outcome.written_back += request.length / kPage;
		for (std::size_t off = 0; off < request.length; off += kPage)
			if (std::strncmp(at + off, "done", 4) == 0)
				outcome.done_on_disk = true;
		if (outcome.done_on_disk)
			return;
	}
}

void program(HelHandle swap) {
	HelHandle memory;
	check(helAllocateSwappableMemory(swap, kPages * kPage, 0, &memory),
			"helAllocateSwappableMemory");
	void *window = nullptr;
	check(helMapMemory(memory, kHelNullHandle, nullptr, 0, kPages * kPage, kRW, &window),
			"helMapMemory");
	auto *data = static_cast<char *>(window);
	for (std::size_t page = 0; page < kPages; ++page)
		std::memcpy(data + page * kPage, pattern(page).data(), kPage);
	check(helUnmapMemory(kHelNullHandle, data, kPages * kPage), "helUnmapMemory");

	check(helMapMemory(memory, kHelNullHandle, nullptr, 0, kPages * kPage, kHelMapProtRead,
				  &window),
			"helMapMemory(read-only)");
	data = static_cast<char *>(window);
	outcome.read_back = true;
	for (std::size_t page = 0; page < kPages; ++page) // evicted pages fault back in here
		outcome.read_back &= std::string(data + page * kPage, kPage) == pattern(page);
	std::printf("program: read %zu pages back, %s\n", kPages,
			outcome.read_back ? "as written" : "WRONG CONTENTS");
	check(helUnmapMemory(kHelNullHandle, data, kPages * kPage), "helUnmapMemory");

	check(helMapMemory(memory, kHelNullHandle, nullptr, 0, kPage, kRW, &window), "helMapMemory");
	std::memcpy(window, "done", 4);
	check(helUnmapMemory(kHelNullHandle, window, kPage), "helUnmapMemory"); // a writeback
	check(helCloseDescriptor(kHelThisUniverse, memory), "helCloseDescriptor");
}

} // namespace

int main() {
	helsim::MachineConfig config;
	config.log_sink = [](const helsim::LogRecord &) {};
	helsim::Machine machine{config};
	machine.spawn("main", [&machine](std::span<const HelHandle>) {
		HelHandle backing, swap;
		check(helCreateSwapSpace(0, &backing, &swap), "helCreateSwapSpace");
		check(helSetSwapBudget(swap, kBudget), "helSetSwapBudget");
		// spawn() copies the handles into each new thread's own universe.
		machine.spawn("daemon", [](std::span<const HelHandle> h) { daemon(h[0]); }, {backing});
		machine.spawn("program", [](std::span<const HelHandle> h) { program(h[0]); }, {swap});
	});
	helsim::RunReport report = machine.run();
	bool clean = !report.stuck && report.operations_pending() == 0 && report.leaks.empty();
	for (const auto &thread : report.threads)
		clean &= thread.outcome == helsim::ThreadOutcome::returned;
	std::printf("daemon: %zu page(s) written back, %zu swapped back in\n", outcome.written_back,
			outcome.swapped_in);
	if (!clean || !outcome.read_back || !outcome.done_on_disk || outcome.swapped_in == 0) {
		std::printf("swap example FAILED\n%s", report.to_string().c_str());
		return 1;
	}
	std::printf("swap example: ok\n");
	return 0;
}
