// A user-space pager: a "file server" provides the contents of a file through managed memory,
// and a client maps the file and reads it like ordinary memory.
//
// main creates the managed memory (helCreateManagedMemory) and starts two threads in
// universes and address spaces of their own: the pager gets only the backing handle, the
// client only the frontal one. The client's first read of each missing page parks it until
// the pager has answered the kernel's initialization request (SQ ManageMemory, then
// helUpdateMemory). With kHelManagedReadahead one request covers up to four pages. Then the
// client changes a line, and SynchronizeSpace turns the dirty page into a writeback request,
// which the pager copies back into its file.
#include <cstdio>
#include <cstring>
#include <span>
#include <string>

#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace {

constexpr std::size_t kPage = 4096;
constexpr std::size_t kPages = 5;
constexpr std::size_t kFileSize = kPages * kPage;

void check(HelError e, const char *what) {
	if (e != kHelErrNone)
		throw helsim::HelException{what, e};
}

// The file both sides agree on: numbered lines, padded to whole pages.
std::string file_contents() {
	std::string text;
	for (int line = 0; text.size() < kFileSize; ++line)
		text += "line " + std::to_string(line) + " of the file\n";
	text.resize(kFileSize);
	return text;
}

// Results, checked by main() after the machine has run.
struct Outcome {
	bool client_read_file = false;
	std::string stored; // the pager's copy of the file at the end
} outcome;

void pager(HelHandle backing) {
	std::string file = file_contents();
	helsim::Dispatcher dispatcher;
	void *window = nullptr;
	check(helMapMemory(backing, kHelNullHandle, nullptr, 0, kFileSize,
				  kHelMapProtRead | kHelMapProtWrite, &window),
			"helMapMemory(backing)");
	auto *cache = static_cast<char *>(window);
	std::size_t initialized = 0, written_back = 0;
	for (std::uintptr_t context = 1; initialized < kPages || written_back < 1; ++context) {
		dispatcher.submit(kHelSubmitManageMemory, context, HelSqManageMemory{backing});
		dispatcher.flush();
		auto element = dispatcher.wait_for(context, [](helsim::Element &&) {});
		auto request = element.as<HelManageResult>();
		check(request.error, "ManageMemory");
		if (request.type == kHelManageInitialize) {
			std::printf("pager: initialize %zu page(s) at offset %#zx\n", request.length / kPage,
					static_cast<std::size_t>(request.offset));
			std::memcpy(cache + request.offset, file.data() + request.offset, request.length);
			check(helUpdateMemory(backing, kHelManageInitialize, request.offset, request.length),
					"helUpdateMemory(Initialize)");
			initialized += request.length / kPage;
		} else {
			std::printf("pager: write back %zu page(s) at offset %#zx\n", request.length / kPage,
					static_cast<std::size_t>(request.offset));
			std::memcpy(file.data() + request.offset, cache + request.offset, request.length);
			check(helUpdateMemory(backing, kHelManageWriteback, request.offset, request.length),
					"helUpdateMemory(Writeback)");
			++written_back;
		}
	}
	check(helUnmapMemory(kHelNullHandle, cache, kFileSize), "helUnmapMemory");
	outcome.stored = file;
}

void client(HelHandle frontal) {
	void *window = nullptr;
	check(helMapMemory(frontal, kHelNullHandle, nullptr, 0, kFileSize,
				  kHelMapProtRead | kHelMapProtWrite, &window),
			"helMapMemory(frontal)");
	auto *file = static_cast<char *>(window);
	// Plain reads: each missing page parks this thread until the pager has provided it.
	std::string seen(file, kFileSize);
	outcome.client_read_file = seen == file_contents();
	std::printf("client: read %zu bytes, %s\n", seen.size(),
			outcome.client_read_file ? "as expected" : "WRONG CONTENTS");
	std::printf("client: first line: %.*s", static_cast<int>(seen.find('\n') + 1), seen.data());

	// Change the first line of the second page and hand the dirty page to the pager.
	std::memcpy(file + kPage, "EDITED", 6);
	helsim::Dispatcher dispatcher;
	dispatcher.submit(kHelSubmitSynchronizeSpace, 1,
			HelSqSynchronizeSpace{kHelNullHandle, file, kFileSize});
	dispatcher.flush();
	check(dispatcher.wait_for(1, [](helsim::Element &&) {}).error(), "SynchronizeSpace");
	check(helUnmapMemory(kHelNullHandle, file, kFileSize), "helUnmapMemory");
}

} // namespace

int main() {
	helsim::MachineConfig config;
	config.log_sink = [](const helsim::LogRecord &record) {
		std::printf("[%.*s] %.*s\n", static_cast<int>(record.thread.size()), record.thread.data(),
				static_cast<int>(record.message.size()), record.message.data());
	};
	helsim::Machine machine{config};
	machine.spawn("main", [&machine](std::span<const HelHandle>) {
		HelHandle backing, frontal;
		check(helCreateManagedMemory(kFileSize, kHelManagedReadahead, &backing, &frontal),
				"helCreateManagedMemory");
		// spawn() copies the handles into each new thread's own universe.
		machine.spawn("pager", [](std::span<const HelHandle> h) { pager(h[0]); }, {backing});
		machine.spawn("client", [](std::span<const HelHandle> h) { client(h[0]); }, {frontal});
	});
	helsim::RunReport report = machine.run();
	std::string expected = file_contents();
	std::memcpy(expected.data() + kPage, "EDITED", 6);
	bool clean = !report.stuck && report.operations_pending() == 0 && report.leaks.empty();
	for (const auto &thread : report.threads)
		clean &= thread.outcome == helsim::ThreadOutcome::returned;
	bool written_back = outcome.stored == expected;
	std::printf("pager: the stored file %s the client's edit\n",
			written_back ? "has" : "DOES NOT HAVE");
	if (!clean || !outcome.client_read_file || !written_back) {
		std::printf("pager example FAILED\n%s", report.to_string().c_str());
		return 1;
	}
	std::printf("pager example: ok\n");
	return 0;
}
