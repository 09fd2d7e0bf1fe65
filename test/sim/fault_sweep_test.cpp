// Fault sweeps over the kernel's workloads: streams, memory, queues and extension objects.
// Each workload is small, so that the suite runs in seconds; HELSIM_SWEEP_SEEDS widens it.
#include "fault_sweep_support.hpp"

#include <cstring>
#include <string_view>

#include <helsim/extension.hpp>

namespace {

using namespace helsim::sweep;
namespace ipc = helsim::ipc;
using helsim::Dispatcher;
using helsim::FaultPoint;
using helsim::test::sq_call;

constexpr std::size_t kPage = 4096;

// ---------------------------------------------------------------- streams

// Offer/accept with an ancillary list (send/recv, imbue/extract credentials, push/pull a
// descriptor), a round trip on the new stream, and a descriptor transferred into a new universe.
void streams(std::span<const HelHandle>) {
	std::optional<Dispatcher> dispatcher;
	if (!open_dispatcher(dispatcher))
		return;
	HelHandle lane0, lane1, token;
	if (!ok(helCreateStream(&lane0, &lane1, 1), "helCreateStream"))
		return;
	if (!ok(helCreateToken(&token), "helCreateToken"))
		return;

	auto offer = ipc::offer_want_lane(ipc::send_buffer("ping"), ipc::imbue_credentials(),
			ipc::push_descriptor(token));
	auto accept =
			ipc::accept(ipc::recv_inline(), ipc::extract_credentials(), ipc::pull_descriptor());
	if (!submit_async(*dispatcher, lane0, 1, offer))
		return;
	std::set<std::uintptr_t> contexts{1};
	if (submit_async(*dispatcher, lane1, 2, accept))
		contexts.insert(2);
	else // the offer waits for an accept that never comes: closing the lane ends it
		ok(helCloseDescriptor(kHelThisUniverse, lane1), "helCloseDescriptor");
	auto done = collect(*dispatcher, contexts);
	if (done.size() != 2)
		return;
	auto offered = ipc::parse<decltype(offer)>(done.at(1));
	auto accepted = ipc::parse<decltype(accept)>(done.at(2));
	if (!results_ok(offered, "offer") || !results_ok(accepted, "accept"))
		return;
	EXPECT_EQ(std::get<1>(accepted).text(), "ping");

	// A round trip on the new stream.
	HelHandle client = std::get<0>(offered).handle, server = std::get<0>(accepted).handle;
	auto send = ipc::send_buffer("again");
	auto reply = ipc::recv_inline();
	auto receive = ipc::recv_inline();
	auto answer = ipc::send_buffer("pong");
	bool sent = submit_async(*dispatcher, client, 3, send, reply);
	bool served = submit_async(*dispatcher, server, 4, receive, answer);
	// One side refused: closing the other's peer lane ends what it waits for.
	if (!sent && served)
		ok(helCloseDescriptor(kHelThisUniverse, client), "helCloseDescriptor");
	if (sent && !served)
		ok(helCloseDescriptor(kHelThisUniverse, server), "helCloseDescriptor");
	std::set<std::uintptr_t> round;
	if (sent)
		round.insert(3);
	if (served)
		round.insert(4);
	auto answered = collect(*dispatcher, round);
	if (answered.contains(3)) {
		auto results = ipc::parse<decltype(send), decltype(reply)>(answered.at(3));
		if (results_ok(results, "send, recv")) {
			EXPECT_EQ(std::get<1>(results).text(), "pong");
		}
	}
	if (answered.contains(4)) {
		auto results = ipc::parse<decltype(receive), decltype(answer)>(answered.at(4));
		if (results_ok(results, "recv, send")) {
			EXPECT_EQ(std::get<0>(results).text(), "again");
		}
	}

	// The pulled descriptor moves on into a universe of its own (its table's first segment).
	HelHandle universe, moved;
	if (!ok(helCreateUniverse(&universe), "helCreateUniverse"))
		return;
	ok(helTransferDescriptor(std::get<3>(accepted).handle, universe, kHelTransferDescriptorOut,
			   kHelRightsMax, 0, &moved),
			"helTransferDescriptor");
}

TEST(FaultSweep, Streams) {
	sweep({"streams", [](helsim::Machine &m) { m.spawn("streams", streams); },
			{FaultPoint::frame_allocation, FaultPoint::object_creation,
					FaultPoint::handle_table_growth, FaultPoint::queue_chunks}});
}

// ---------------------------------------------------------------- memory

// Allocate, map, fault in through the kernel (lock, write), copy-on-write, a slice, a fork.
// User code touches no page itself: a frame that cannot be allocated would fault it.
void memory(std::span<const HelHandle>) {
	std::optional<Dispatcher> dispatcher;
	if (!open_dispatcher(dispatcher))
		return;
	Dispatcher &d = *dispatcher;
	HelHandle view;
	if (!ok(helAllocateMemory(4 * kPage, 0, nullptr, &view), "helAllocateMemory"))
		return;
	void *mapping = nullptr;
	if (ok(helMapMemory(view, kHelNullHandle, nullptr, 0, 4 * kPage,
				   kHelMapProtRead | kHelMapProtWrite, &mapping),
				"helMapMemory"))
		ok(helUnmapMemory(kHelNullHandle, mapping, 4 * kPage), "helUnmapMemory");

	auto locked = sq_call(d, kHelSubmitLockMemoryView, HelSqLockMemoryView{view, 0, 2 * kPage});
	if (ok(locked.error(), "kHelSubmitLockMemoryView"))
		ok(helCloseDescriptor(kHelThisUniverse, locked.as<HelHandleResult>().handle),
				"helCloseDescriptor");

	constexpr std::string_view kText = "fault sweep";
	bool written = write_view(d, view, kPage, kText.data(), kText.size());

	HelHandle slice;
	void *window = nullptr;
	if (ok(helCreateSliceView(view, kPage, 2 * kPage, 0, &slice), "helCreateSliceView") &&
			ok(helMapMemory(slice, kHelNullHandle, nullptr, 0, 2 * kPage, kHelMapProtRead, &window),
					"helMapMemory")) {
		ok(helUnmapMemory(kHelNullHandle, window, 2 * kPage), "helUnmapMemory");
	}

	HelHandle copy;
	if (!ok(helCopyOnWrite(view, 0, 4 * kPage, &copy), "helCopyOnWrite"))
		return;
	// Writing the copy copies the page; the original keeps its contents.
	bool copied = write_view(d, copy, kPage, "COPY", 4);
	char original[kText.size()] = {};
	if (read_view(d, view, kPage, original, sizeof(original)) && written && copied) {
		EXPECT_EQ(std::string_view(original, sizeof(original)), kText);
	}
	// The fork shares the copy's pages; both stay usable whatever the fork's outcome.
	auto forked = sq_call(d, kHelSubmitForkMemory, HelSqForkMemory{copy});
	if (ok(forked.error(), "kHelSubmitForkMemory")) {
		char seen[4] = {};
		if (read_view(d, forked.as<HelHandleResult>().handle, kPage, seen, sizeof(seen)) &&
				copied) {
			EXPECT_EQ(std::string_view(seen, sizeof(seen)), "COPY");
		}
	}
	write_view(d, copy, 0, "after", 5);
}

TEST(FaultSweep, Memory) {
	sweep({"memory", [](helsim::Machine &m) { m.spawn("memory", memory); },
			{FaultPoint::frame_allocation, FaultPoint::object_creation, FaultPoint::queue_chunks}});
}

// ---------------------------------------------------------------- what the sweeps found

// The stream an offer/accept pairing makes is created when the two meet, long after both were
// submitted: without it, both fail with kHelErrNoMemory, ancillary lists included (an
// exception out of the pairing lost both completions).
TEST(FaultSweepFinding, OfferAcceptWhoseStreamCannotBeMadeFailsBothSides) {
	sweep({"offer/accept",
			[](helsim::Machine &m) {
				m.spawn("pair", [](std::span<const HelHandle>) {
					std::optional<Dispatcher> dispatcher;
					HelHandle lane0, lane1;
					if (!open_dispatcher(dispatcher) ||
							!ok(helCreateStream(&lane0, &lane1, 0), "helCreateStream"))
						return;
					auto offer = ipc::offer(ipc::send_buffer("x"));
					auto accept = ipc::accept(ipc::recv_inline());
					if (!submit_async(*dispatcher, lane0, 1, offer))
						return;
					std::set<std::uintptr_t> contexts{1};
					if (submit_async(*dispatcher, lane1, 2, accept))
						contexts.insert(2);
					else
						ok(helCloseDescriptor(kHelThisUniverse, lane1), "helCloseDescriptor");
					auto done = collect(*dispatcher, contexts);
					if (done.size() == 2) {
						bool offered = results_ok(ipc::parse<decltype(offer)>(done.at(1)), "offer");
						bool accepted =
								results_ok(ipc::parse<decltype(accept)>(done.at(2)), "accept");
						EXPECT_EQ(offered, accepted) << "a pairing fails on both sides or none";
					}
				});
			},
			{FaultPoint::object_creation}});
}

// The MemoryViewLock is made once the range is touched and pinned, after the operation was
// submitted: without it, the operation completes with kHelErrNoMemory and the pin goes (an
// exception there lost the completion and leaked the operation with its queue).
TEST(FaultSweepFinding, LockMemoryViewWhoseLockCannotBeMadeCompletesOnce) {
	sweep({"lock memory view",
			[](helsim::Machine &m) {
				m.spawn("lock", [](std::span<const HelHandle>) {
					std::optional<Dispatcher> dispatcher;
					HelHandle view;
					if (!open_dispatcher(dispatcher) ||
							!ok(helAllocateMemory(2 * kPage, 0, nullptr, &view),
									"helAllocateMemory"))
						return;
					for (int round = 0; round < 2; ++round) {
						auto locked = sq_call(*dispatcher, kHelSubmitLockMemoryView,
								HelSqLockMemoryView{view, 0, 2 * kPage});
						if (ok(locked.error(), "kHelSubmitLockMemoryView"))
							ok(helCloseDescriptor(kHelThisUniverse,
									   locked.as<HelHandleResult>().handle),
									"helCloseDescriptor");
					}
				});
			},
			{FaultPoint::object_creation}});
}

// A fork makes its new view before the forked one starts forking: a fork that cannot be made
// leaves the view usable (it stayed frozen, and the next access to it waited for ever).
TEST(FaultSweepFinding, ForkMemoryThatCannotMakeTheForkLeavesTheViewUsable) {
	sweep({"fork memory",
			[](helsim::Machine &m) {
				m.spawn("fork", [](std::span<const HelHandle>) {
					std::optional<Dispatcher> dispatcher;
					HelHandle copy;
					if (!open_dispatcher(dispatcher) ||
							!ok(helCopyOnWrite(kHelZeroMemory, 0, kPage, &copy), "helCopyOnWrite"))
						return;
					write_view(*dispatcher, copy, 0, "a", 1);
					auto forked = sq_call(*dispatcher, kHelSubmitForkMemory, HelSqForkMemory{copy});
					ok(forked.error(), "kHelSubmitForkMemory");
					write_view(*dispatcher, copy, 0, "b", 1);
				});
			},
			{FaultPoint::object_creation}});
}

// ---------------------------------------------------------------- queues

// A small ring that wraps its CQ and SQ chunks many times, and a second queue on the legacy
// path.
void queues(std::span<const HelHandle>) {
	std::optional<Dispatcher> dispatcher;
	if (!open_dispatcher(dispatcher, {.cq_chunks = 2, .sq_chunks = 2, .chunk_size = 128}))
		return;
	for (std::uintptr_t round = 0; round < 6; ++round) {
		std::set<std::uintptr_t> contexts;
		for (std::uintptr_t c = 1; c <= 5; ++c) {
			dispatcher->submit(kHelSubmitAsyncNop, round * 8 + c, std::span<const std::byte>{});
			contexts.insert(round * 8 + c);
		}
		dispatcher->flush();
		for (auto &[context, element] : collect(*dispatcher, contexts))
			EXPECT_EQ(element.error(), kHelErrNone) << context;
	}
	std::optional<Dispatcher> second;
	if (!open_dispatcher(second, {.cq_chunks = 2, .sq_chunks = 0, .chunk_size = 128}))
		return;
	std::set<std::uintptr_t> contexts;
	for (std::uintptr_t c = 1; c <= 8; ++c)
		if (ok(helSubmitAsyncNop(second->queue(), c), "helSubmitAsyncNop"))
			contexts.insert(c);
	for (auto &[context, element] : collect(*second, contexts))
		EXPECT_EQ(element.error(), kHelErrNone) << context;
}

TEST(FaultSweep, Queues) {
	sweep({"queues", [](helsim::Machine &m) { m.spawn("queues", queues); },
			{FaultPoint::frame_allocation, FaultPoint::object_creation, FaultPoint::queue_chunks}});
}

// ---------------------------------------------------------------- extension objects

// An extension kind whose objects a syscall creates (ext::Caller::create), and an
// asynchronous extension call that completes a little later on the caller's queue.
constexpr std::uint32_t kCallCreate = helsim::kFirstExtensionSyscall + 40;
constexpr std::uint32_t kCallLater = kCallCreate + 1;

class Widget final : public helsim::ext::KernelObject {};

HelError create_widget(helsim::ext::Caller &caller, const HelWord *, HelWord *outs) {
	auto widget = caller.create<Widget>(*caller.object_kind("sweep widget"));
	HelHandle handle;
	if (HelError e = caller.attach(*widget, handle); e != kHelErrNone)
		return e;
	outs[0] = static_cast<HelWord>(handle);
	return kHelErrNone;
}

HelError later(helsim::ext::Caller &caller, const HelWord *args, HelWord *) {
	helsim::ext::AsyncOperation operation;
	if (HelError e = caller.start({static_cast<HelHandle>(args[0]), args[1]}, operation);
			e != kHelErrNone)
		return e;
	caller.after(1'000, [operation] { operation.complete(kHelErrNone); });
	return kHelErrNone;
}

void install_widgets(helsim::Machine &machine) {
	helsim::ext::register_object_kind(machine, {.name = "sweep widget"});
	helsim::ext::register_syscall(machine, kCallCreate, "sweepCreateWidget", create_widget);
	helsim::ext::register_syscall(machine, kCallLater, "sweepLater", later);
}

void widgets(std::span<const HelHandle>) {
	std::optional<Dispatcher> dispatcher;
	if (!open_dispatcher(dispatcher))
		return;
	for (int i = 0; i < 3; ++i) {
		HelWord handle = 0;
		if (ok(helSyscall0_1(static_cast<int>(kCallCreate), &handle), "sweepCreateWidget"))
			ok(helCloseDescriptor(kHelThisUniverse, static_cast<HelHandle>(handle)),
					"helCloseDescriptor");
	}
	std::set<std::uintptr_t> contexts;
	for (std::uintptr_t c = 1; c <= 2; ++c)
		if (ok(helSyscall2(static_cast<int>(kCallLater), static_cast<HelWord>(dispatcher->queue()),
					   c),
					"sweepLater"))
			contexts.insert(c);
	for (auto &[context, element] : collect(*dispatcher, contexts))
		EXPECT_EQ(element.error(), kHelErrNone) << context;
}

TEST(FaultSweep, ExtensionObjects) {
	sweep({"extension objects",
			[](helsim::Machine &m) {
				install_widgets(m);
				m.spawn("widgets", widgets);
			},
			{FaultPoint::object_creation}});
}

// Extension operations complete through the queues' posting path, so that completion-delay
// injection holds them back as it does built-in ones.
TEST(FaultInjection, ExtensionOperationsAreDelayedLikeBuiltIns) {
	auto config = helsim::testing::deterministic(1);
	config.inject.delay_completion_ppm = 1'000'000;
	helsim::Machine machine{config};
	install_widgets(machine);
	machine.spawn("widgets", widgets);
	auto report = machine.run();
	helsim::test::expect_clean(report);
	EXPECT_EQ(report.counters.injected_delays, 2u) << report.to_string();
}

} // namespace
