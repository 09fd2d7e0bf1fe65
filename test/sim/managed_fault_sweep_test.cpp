// The fault sweep of managed memory (docs/testing.md, "Fault sweeps"): a pager serving a
// managed memory, and a client in another universe that reads and writes it through a mapping
// and through asynchronous copies.
#include "fault_sweep_support.hpp"

#include <algorithm>

namespace {

using namespace helsim::sweep;
using helsim::Dispatcher;
using helsim::FaultPoint;
using helsim::test::sq_call;

constexpr std::size_t kPage = 4096;
// The client uses the first three pages. The last one is the pager's own: no client touches it,
// so that asking for it is the pager's way to stop (see stop()).
constexpr std::size_t kClientPages = 3;
constexpr std::size_t kStopPage = kClientPages;
constexpr std::size_t kPages = kStopPage + 1;

// What the pager puts into page `index` (< 10): "page <index>".
constexpr std::size_t kTextSize = 8;
std::array<char, kTextSize> page_text(std::size_t index) {
	return {'p', 'a', 'g', 'e', ' ', static_cast<char>('0' + index % 10), 0, 0};
}

// The pager's answer to kHelErrNoMemory: nothing happened, so it makes the call again (a sweep
// fails one pass only, so the second attempt succeeds).
template <typename Call>
bool retried(const char *what, Call &&call) {
	HelError error = call();
	if (error == kHelErrNoMemory)
		error = call();
	return ok(error, what, {});
}

// ---------------------------------------------------------------- the client

// In its own universe and address space, with the frontal view as its only handle. It touches
// no page with user code (a page table frame that cannot be allocated would fault it); the
// kernel reads and writes the mapping for it, and each access waits for the pager.
void client(std::uintptr_t frontal_handle) {
	auto frontal = static_cast<HelHandle>(frontal_handle);
	std::optional<Dispatcher> dispatcher;
	if (!open_dispatcher(dispatcher))
		return;
	Dispatcher &d = *dispatcher;
	void *window = nullptr;
	if (!ok(helMapMemory(frontal, kHelNullHandle, nullptr, 0, kClientPages * kPage,
					kHelMapProtRead | kHelMapProtWrite, &window),
				"helMapMemory"))
		return;
	auto *pages = static_cast<char *>(window);

	// A syscall reads page 0 through the mapping.
	ok(helLog(kHelLogSeverityDebug, pages, kTextSize - 1), "helLog");
	// An asynchronous copy from page 1 of the view into page 2 of the mapping: it waits for
	// the pager twice, and its kernel write dirties page 2 there.
	if (read_view(d, frontal, kPage, pages + 2 * kPage, kTextSize)) {
		std::array<char, kTextSize> seen{};
		if (read_view(d, frontal, 2 * kPage, seen.data(), seen.size())) {
			EXPECT_EQ(seen, page_text(1));
		}
	}
	// A kernel write to the view marks page 0 at once; synchronizing the mapping hands page 2
	// over: both become writeback requests.
	write_view(d, frontal, 0, "written", kTextSize);
	ok(sq_call(d, kHelSubmitSynchronizeSpace,
			   HelSqSynchronizeSpace{kHelNullHandle, window, kClientPages * kPage})
					.error(),
			"kHelSubmitSynchronizeSpace");
	ok(helUnmapMemory(kHelNullHandle, window, kClientPages * kPage), "helUnmapMemory");
}

// ---------------------------------------------------------------- the pager

// The pager's queue of what it waits for: its ManageMemory request, the end of the client, and
// its own stop read. Its synchronous calls go through a second dispatcher, `calls`.
enum : std::uintptr_t { kManage = 1, kClientEnded, kStopRead };

struct Pager {
	Dispatcher &events, &calls;
	HelHandle backing, frontal;

	void submit_manage() {
		events.submit(kHelSubmitManageMemory, kManage, HelSqManageMemory{backing});
	}

	// Writes through the backing view (a direct store would fault when its frame fails), then
	// declares the pages initialized. The stop page stays a hole: helUpdateMemory gives it its
	// (zeroed) frame, so that the sweep fails that allocation too.
	bool initialize(std::size_t offset, std::size_t length) {
		for (std::size_t page = offset / kPage;
				page < std::min((offset + length) / kPage, kStopPage); ++page) {
			auto text = page_text(page);
			auto write = [&] {
				return sq_call(calls, kHelSubmitWriteMemory,
						HelSqWriteMemory{backing, page * kPage, text.size(), text.data()})
						.error();
			};
			if (!retried("kHelSubmitWriteMemory", write))
				return false;
		}
		return retried("helUpdateMemory",
				[&] { return helUpdateMemory(backing, kHelManageInitialize, offset, length); });
	}

	// Reads the pages out (to nowhere) and declares them clean.
	bool write_back(std::size_t offset, std::size_t length) {
		std::array<char, kTextSize> out{};
		for (std::size_t at = offset; at < offset + length; at += kPage) {
			auto read = [&] {
				return sq_call(calls, kHelSubmitReadMemory,
						HelSqReadMemory{backing, at, out.size(), out.data()})
						.error();
			};
			if (!retried("kHelSubmitReadMemory", read))
				return false;
		}
		return retried("helUpdateMemory",
				[&] { return helUpdateMemory(backing, kHelManageWriteback, offset, length); });
	}

	// Serves one request; false once it was the request for the stop page.
	bool serve(const HelManageResult &request) {
		EXPECT_EQ(request.error, kHelErrNone);
		if (request.type == kHelManageWriteback) {
			EXPECT_TRUE(write_back(request.offset, request.length));
			return true;
		}
		EXPECT_EQ(request.type, kHelManageInitialize);
		EXPECT_TRUE(initialize(request.offset, request.length));
		return request.offset + request.length <= kStopPage * kPage;
	}

	// Serves requests until `context` completes.
	std::optional<helsim::Element> serve_until(std::uintptr_t context, bool &manage_pending) {
		for (;;) {
			auto element = events.wait();
			if (!element) {
				ADD_FAILURE() << "the pager's wait was interrupted";
				return std::nullopt;
			}
			if (element->context() == context)
				return element;
			if (element->context() != kManage) {
				ADD_FAILURE() << "unexpected completion " << element->context();
				return std::nullopt;
			}
			manage_pending = serve(element->as<HelManageResult>());
			if (manage_pending)
				submit_manage();
		}
	}

	// thor never cancels a ManageMemory operation, nor completes it when the memory goes away
	// (docs/reference/sq-manage-memory.md): a pager stops by asking for a page nobody else
	// touches. Its request completes the pending operation, which is answered, not resubmitted.
	void stop() {
		std::array<char, kTextSize> seen{};
		events.submit(kHelSubmitReadMemory, kStopRead,
				HelSqReadMemory{frontal, kStopPage * kPage, seen.size(), seen.data()});
		bool manage_pending = true;
		auto read = serve_until(kStopRead, manage_pending);
		EXPECT_FALSE(manage_pending) << "the stop read completed without its request";
		if (read && ok(read->error(), "kHelSubmitReadMemory (stop)")) {
			EXPECT_EQ(seen, decltype(seen){});
		}
	}
};

// Starts the client in a new universe and address space; its thread handle, or
// kHelNullHandle if something could not be made.
HelHandle start_client(HelHandle frontal) {
	HelHandle universe, space, copy, thread = kHelNullHandle;
	if (!ok(helCreateUniverse(&universe), "helCreateUniverse"))
		return kHelNullHandle;
	if (ok(helCreateSpace(&space), "helCreateSpace")) {
		if (ok(helTransferDescriptor(frontal, universe, kHelTransferDescriptorOut, kHelRightsMax, 0,
					   &copy),
					"helTransferDescriptor"))
			ok(helCreateThread(universe, space, kHelAbiSystemV, reinterpret_cast<void *>(&client),
					   reinterpret_cast<void *>(static_cast<std::uintptr_t>(copy)), 0, &thread),
					"helCreateThread");
		ok(helCloseDescriptor(kHelThisUniverse, space), "helCloseDescriptor");
	}
	ok(helCloseDescriptor(kHelThisUniverse, universe), "helCloseDescriptor");
	return thread;
}

void pager(std::span<const HelHandle>) {
	std::optional<Dispatcher> events, calls;
	if (!open_dispatcher(events) || !open_dispatcher(calls))
		return;
	HelHandle backing, frontal;
	if (!ok(helCreateManagedMemory(kPages * kPage, 0, &backing, &frontal),
				"helCreateManagedMemory"))
		return;
	HelHandle thread = start_client(frontal);
	if (thread == kHelNullHandle)
		return;
	Pager pager{*events, *calls, backing, frontal};
	pager.submit_manage();
	// Serve the client until its thread has ended (closing the handle earlier would kill it).
	bool manage_pending = true;
	for (;;) {
		events->submit(kHelSubmitObserve, kClientEnded, HelSqObserve{thread});
		auto observed = pager.serve_until(kClientEnded, manage_pending);
		if (!observed)
			return;
		if (observed->as<HelObserveResult>().error == kHelErrThreadTerminated)
			break;
		ADD_FAILURE() << "the client stopped: observation "
					  << observed->as<HelObserveResult>().observation;
		return;
	}
	ok(helCloseDescriptor(kHelThisUniverse, thread), "helCloseDescriptor");
	pager.stop();
}

TEST(FaultSweep, ManagedMemoryWithAPager) {
	sweep({"managed memory", [](helsim::Machine &m) { m.spawn("pager", pager); },
			{FaultPoint::frame_allocation, FaultPoint::object_creation,
					FaultPoint::handle_table_growth, FaultPoint::queue_chunks}});
}

} // namespace
