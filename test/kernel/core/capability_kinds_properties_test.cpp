// Capability properties (issue 18, item 3) over the kinds the memory walk of
// capability_properties_test.cpp does not cover: copy-on-write views and their forks, address
// spaces, lanes (made by helCreateStream and by an offer meeting an accept), threads, queues,
// and indirect, swappable, managed and hardware memory views. Each seed runs a few rounds per kind;
// a round creates an object, sends a copy of its handle out to another universe and back, each leg
// through a random exposed mask, then checks that the rights never grew, that every right of the
// kind gates exactly what the reference says it gates, and that closing this universe's handles
// leaves the other universe's copy (and, for a lane, the lane) working. The driver holds every
// other universe with Grant and Take, so it reaches their handles only by transferring them in: the
// copy it makes that way has the remote handle's rights exactly (its exposed mask is all).
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <utility>

#include "../../support.hpp"
#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/ipc.hpp>
#include <helsim/machine.hpp>
#include <helsim/testing.hpp>

#include "sim/split_mix.hpp"

namespace {

using namespace helsim::test;
namespace ipc = helsim::ipc;

constexpr int kRounds = 6;
constexpr std::size_t kPage = 4096;
constexpr std::uint64_t kTag = 0x7a6b5c4d3e2f1001;

// Allocated memory's default rights (hel-reference.md, section 1; the other kinds' are in
// support.hpp).
constexpr std::uint32_t kMemoryRights = kHelRightRead | kHelRightWrite | kHelRightExecute |
		kHelRightAssign | kHelRightProvision | kHelRightPin | kHelRightFence | kHelRightManage;
// Indirect memory's: no Execute and no Pin (docs/reference/helCreateIndirectMemory.md).
constexpr std::uint32_t kIndirectRights = kHelRightRead | kHelRightWrite | kHelRightAssign |
		kHelRightProvision | kHelRightFence | kHelRightManage;

// What mapping with each protection needs: Assign and Read, and Write too for a writable one.
constexpr std::pair<std::uint32_t, std::uint32_t> kMapChecks[] = {{kHelMapProtRead,
																		  kHelRightAssign |
																				  kHelRightRead},
		{kHelMapProtRead | kHelMapProtWrite, kHelRightAssign | kHelRightRead | kHelRightWrite}};

bool has(std::uint32_t rights, std::uint32_t needed) { return (rights & needed) == needed; }

// The walk depends on the seed only, not on the standard library's distributions.
struct Rng : helsim::sim::SplitMix64 {
	using SplitMix64::SplitMix64;
	// An exposed mask: usually a random subset of the kind's rights, sometimes all of them.
	std::uint32_t exposed(std::uint32_t kind) {
		return below(3) == 0 ? kHelRightsMax : static_cast<std::uint32_t>(next()) & kind;
	}
};

// A call gated by `needed`: with the rights it gives `expected`, without them kHelErrBadRights.
void expect_gate(HelError error, std::uint32_t rights, std::uint32_t needed, HelError expected,
		const std::string &what) {
	EXPECT_EQ(error, has(rights, needed) ? expected : kHelErrBadRights)
			<< what << " with rights " << rights;
}

class Rounds {
public:
	explicit Rounds(std::uint64_t seed) : rng_{seed} { remote_ = make_universe(); }
	~Rounds() { EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, remote_), kHelErrNone); }
	Rounds(const Rounds &) = delete;
	Rounds &operator=(const Rounds &) = delete;

	// ------------------------------------------------------------ the trip

	// `h` sent out to the remote universe and back, each leg through a random mask of the
	// kind's rights: the remote copy and the home copy, and the rights the model gives each.
	struct Trip {
		HelHandle away;
		std::uint32_t away_rights;
		HelHandle home;
		std::uint32_t home_rights;
	};

	Trip trip(HelHandle h, std::uint32_t kind) {
		std::uint32_t rights = info_of(h).rights;
		std::uint32_t out_mask = rng_.exposed(kind), in_mask = rng_.exposed(kind);
		Trip t{kHelNullHandle, rights & out_mask, kHelNullHandle, rights & out_mask & in_mask};
		EXPECT_EQ(helTransferDescriptor(h, remote_, kHelTransferDescriptorOut, out_mask, 0,
						  &t.away),
				kHelErrNone);
		EXPECT_EQ(probe_rights(t.away), t.away_rights) << "out through " << out_mask;
		EXPECT_EQ(helTransferDescriptor(t.away, remote_, kHelTransferDescriptorIn, in_mask, 0,
						  &t.home),
				kHelErrNone);
		EXPECT_EQ(info_of(t.home).rights, t.home_rights) << "back in through " << in_mask;
		return t;
	}

	// A local copy of the remote handle `away`; the caller closes it.
	HelHandle probe(HelHandle away) {
		HelHandle copy = kHelNullHandle;
		EXPECT_EQ(helTransferDescriptor(away, remote_, kHelTransferDescriptorIn, kHelRightsMax, 0,
						  &copy),
				kHelErrNone);
		return copy;
	}

	std::uint32_t probe_rights(HelHandle away) {
		HelHandle copy = probe(away);
		std::uint32_t rights = info_of(copy).rights;
		close(copy);
		return rights;
	}

	static void close(HelHandle h) {
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, h), kHelErrNone);
	}

	// Closes the remote copy: once, then its value is gone there.
	void close_away(HelHandle away) {
		EXPECT_EQ(helCloseDescriptor(remote_, away), kHelErrNone);
		EXPECT_EQ(helCloseDescriptor(remote_, away), kHelErrNoDescriptor);
	}

	// ------------------------------------------------------------ queues

	// Rounds for a kind whose rights are checked by gates(handle, rights) alone: the copy sent
	// away gates by its own rights, and still does after every local handle is closed.
	template <typename Make, typename Gates>
	void gated_rounds(Make make, std::uint32_t rights, int type, Gates gates,
			const std::function<void(HelHandle, std::uint32_t)> &last = {}) {
		for (int r = 0; r < kRounds; ++r) {
			HelHandle object = make();
			Trip t = trip(object, rights);
			gates(t.home, t.home_rights);
			close(t.home);
			close(object);
			HelHandle copy = probe(t.away);
			EXPECT_EQ(info_of(copy).type, type);
			gates(copy, t.away_rights);
			if (last)
				last(copy, t.away_rights);
			close(copy);
			close_away(t.away);
		}
	}

	void queues() {
		gated_rounds([] { return make_queue(); }, kQueueRights, kHelDescQueue,
				[](HelHandle h, std::uint32_t rights) { queue_gates(h, rights); });
	}

	static void queue_gates(HelHandle h, std::uint32_t rights) {
		expect_gate(helDriveQueue(h, 0, 0), rights, kHelRightInvoke | kHelRightWait, kHelErrNone,
				"helDriveQueue");
		expect_gate(helAlertQueue(h), rights, kHelRightSignal, kHelErrNone, "helAlertQueue");
		map_gates(h, rights, "queue");
	}

	static void map_gates(HelHandle h, std::uint32_t rights, const char *what) {
		for (auto [prot, needed] : kMapChecks) {
			void *pointer = nullptr;
			HelError error = helMapMemory(h, kHelNullHandle, nullptr, 0, kPage, prot, &pointer);
			expect_gate(error, rights, needed, kHelErrNone,
					std::string{"helMapMemory of a "} + what + ", prot " + std::to_string(prot));
			if (error == kHelErrNone) {
				EXPECT_EQ(helUnmapMemory(kHelNullHandle, pointer, kPage), kHelErrNone);
			}
		}
	}

	// ------------------------------------------------------------ address spaces

	// Each round's space has a tagged page mapped at `at` through the handle with all rights.
	void spaces() {
		for (int r = 0; r < kRounds; ++r) {
			HelHandle space = make_space();
			HelHandle memory = kHelNullHandle;
			ASSERT_EQ(helAllocateMemory(kPage, 0, nullptr, &memory), kHelErrNone);
			void *at = nullptr;
			ASSERT_EQ(helMapMemory(memory, space, nullptr, 0, kPage,
							  kHelMapProtRead | kHelMapProtWrite, &at),
					kHelErrNone);
			write_word(space, at, kTag);
			Trip t = trip(space, kSpaceRights);
			space_gates(t.home, t.home_rights, memory, at);
			close(t.home);
			close(space);
			// The space and its mapping live on through the remote handle alone.
			HelHandle copy = probe(t.away);
			EXPECT_EQ(info_of(copy).type, kHelDescAddressSpace);
			space_gates(copy, t.away_rights, memory, at);
			close(copy);
			close_away(t.away);
			close(memory);
		}
	}

	void space_gates(HelHandle space, std::uint32_t rights, HelHandle memory, void *at) {
		void *pointer = nullptr;
		HelError error = helMapMemory(memory, space, nullptr, 0, kPage, kHelMapProtRead, &pointer);
		expect_gate(error, rights, kHelRightGrant, kHelErrNone, "helMapMemory into a space");
		if (error == kHelErrNone) {
			EXPECT_EQ(helUnmapMemory(space, pointer, kPage), kHelErrNone);
		}
		// Unmapping needs Grant too; without it the space's own page must stay.
		if (!has(rights, kHelRightGrant)) {
			EXPECT_EQ(helUnmapMemory(space, at, kPage), kHelErrBadRights);
		}
		std::uintptr_t physical = 0;
		expect_gate(helPointerPhysical(space, at, &physical), rights, kHelRightProvision,
				kHelErrNone, "helPointerPhysical");
		HelHandle thread = kHelNullHandle;
		error = helCreateThread(kHelNullHandle, space, kHelAbiSystemV,
				reinterpret_cast<void *>(&idle_entry), nullptr, kHelThreadStopped, &thread);
		expect_gate(error, rights, kHelRightRead | kHelRightWrite | kHelRightAssign, kHelErrNone,
				"helCreateThread in a space");
		if (error == kHelErrNone)
			close(thread);
		std::uint64_t word = 0;
		auto read = sq_call(dispatcher_, kHelSubmitReadMemory,
				HelSqReadMemory{space, reinterpret_cast<std::uintptr_t>(at), sizeof(word), &word});
		expect_gate(read.error(), rights, kHelRightRead, kHelErrNone, "ReadMemory of a space");
		if (read.error() == kHelErrNone) {
			EXPECT_EQ(word, kTag);
		}
		auto write = sq_call(dispatcher_, kHelSubmitWriteMemory,
				HelSqWriteMemory{space, reinterpret_cast<std::uintptr_t>(at), sizeof(kTag), &kTag});
		expect_gate(write.error(), rights, kHelRightWrite, kHelErrNone, "WriteMemory of a space");
	}

	void write_word(HelHandle space, void *at, const std::uint64_t &word) {
		auto write = sq_call(dispatcher_, kHelSubmitWriteMemory,
				HelSqWriteMemory{space, reinterpret_cast<std::uintptr_t>(at), sizeof(word), &word});
		EXPECT_EQ(write.error(), kHelErrNone);
	}

	// ------------------------------------------------------------ lanes

	// The round's two lanes come from helCreateStream, or (`accepted`) are the two sides of the
	// stream an offer with kHelItemWantLane and an accept made: the same rights, the same rules.
	void lanes(bool accepted = false) {
		for (int r = 0; r < kRounds; ++r) {
			HelHandle lane = kHelNullHandle, peer = kHelNullHandle;
			if (accepted)
				accepted_pair(lane, peer);
			else
				ASSERT_EQ(helCreateStream(&lane, &peer, 0), kHelErrNone);
			EXPECT_EQ(info_of(lane).rights, kLaneRights);
			EXPECT_EQ(info_of(peer).rights, kLaneRights);
			Trip t = trip(lane, kLaneRights);
			EXPECT_EQ(send(t.home, peer),
					has(t.home_rights, kHelRightInvoke) ? kHelErrNone : kHelErrBadRights);
			// Only what Manage gates may shut the lane down, and it ends the round's lane.
			HelError shutdown = helShutdownLane(t.home);
			expect_gate(shutdown, t.home_rights, kHelRightManage, kHelErrNone, "helShutdownLane");
			close(t.home);
			close(lane);
			HelHandle copy = probe(t.away);
			EXPECT_EQ(info_of(copy).type, kHelDescLane);
			if (shutdown != kHelErrNone) {
				// The remote copy still holds the lane open: the peer still reaches it.
				EXPECT_EQ(send(copy, peer),
						has(t.away_rights, kHelRightInvoke) ? kHelErrNone : kHelErrBadRights);
			}
			close(copy);
			close_away(t.away);
			// That was the lane's last handle: the peer's messages now end there.
			EXPECT_EQ(send_from(peer), kHelErrEndOfLane);
			close(peer);
		}
	}

	// Offer (kHelItemWantLane) on one lane of a fresh stream, accept on the other: `offered` and
	// `accepted` are the two sides of the stream the pairing made. The fresh stream is closed.
	void accepted_pair(HelHandle &offered, HelHandle &accepted) {
		constexpr std::uintptr_t kOffer = 3, kAccept = 4;
		HelHandle first = kHelNullHandle, second = kHelNullHandle;
		ASSERT_EQ(helCreateStream(&first, &second, 0), kHelErrNone);
		auto offer = ipc::offer_want_lane();
		auto accept = ipc::accept();
		ipc::submit(dispatcher_, first, kOffer, offer);
		ipc::submit(dispatcher_, second, kAccept, accept);
		dispatcher_.flush();
		for (int done = 0; done < 2;) {
			auto element = dispatcher_.wait();
			if (!element)
				continue;
			++done;
			ipc::HandleResult result;
			if (element->context() == kOffer)
				result = std::get<0>(ipc::parse<decltype(offer)>(*element));
			else if (element->context() == kAccept)
				result = std::get<0>(ipc::parse<decltype(accept)>(*element));
			else
				ADD_FAILURE() << "a completion nobody submitted: " << element->context();
			EXPECT_EQ(result.error, kHelErrNone);
			(element->context() == kOffer ? offered : accepted) = result.handle;
		}
		close(first);
		close(second);
	}

	// Sends a word from `from` and receives it on `to`; the first error of either side.
	HelError send(HelHandle from, HelHandle to) {
		constexpr std::uintptr_t kSend = 1, kRecv = 2;
		auto message = ipc::send_buffer(&kTag, sizeof(kTag));
		ipc::submit(dispatcher_, from, kSend, message);
		dispatcher_.flush();
		// A refused submission completes with context ~0 while the flush drives the queue.
		if (auto element = dispatcher_.poll()) {
			EXPECT_EQ(element->context(), ~std::uintptr_t{0});
			return element->error();
		}
		// The send did not fail at submission: it completes once the receive is there.
		auto receive = ipc::recv_inline();
		ipc::submit(dispatcher_, to, kRecv, receive);
		dispatcher_.flush();
		HelError sent = -1, received = -1;
		auto take = [&](helsim::Element &&element) {
			if (element.context() == kSend)
				sent = std::get<0>(ipc::parse<decltype(message)>(element)).error;
			else if (element.context() == kRecv)
				received = std::get<0>(ipc::parse<decltype(receive)>(element)).error;
			else
				ADD_FAILURE() << "a completion nobody submitted: " << element.context();
		};
		while (sent == -1 || received == -1)
			if (auto element = dispatcher_.wait())
				take(std::move(*element));
		return sent != kHelErrNone ? sent : received;
	}

	// A send whose other side has no handle left: its completion's error.
	HelError send_from(HelHandle lane) {
		auto message = ipc::send_buffer(&kTag, sizeof(kTag));
		auto exchange = ipc::exchange_sync(dispatcher_, lane, message);
		return std::get<0>(exchange.results).error;
	}

	// ------------------------------------------------------------ threads

	// The remote copy alone keeps the thread: its gates see a stopped thread, not an ended one.
	// Last, through the remote copy, only Manage may resume it (it then returns from its entry).
	void threads() {
		gated_rounds([] { return make_stopped_thread(); }, kThreadRights, kHelDescThread,
				[this](HelHandle h, std::uint32_t rights) { thread_gates(h, rights); },
				[](HelHandle h, std::uint32_t rights) {
					expect_gate(helResume(h), rights, kHelRightManage, kHelErrNone, "helResume");
				});
	}

	void thread_gates(HelHandle thread, std::uint32_t rights) {
		std::uint8_t mask = 0;
		std::size_t actual = 0;
		expect_gate(helGetAffinity(thread, &mask, sizeof(mask), &actual), rights, kHelRightRead,
				kHelErrNone, "helGetAffinity");
		std::uint8_t cpu0 = 1;
		expect_gate(helSetAffinity(thread, &cpu0, sizeof(cpu0)), rights, kHelRightWrite,
				kHelErrNone, "helSetAffinity");
		expect_gate(helSetPriority(thread, 0), rights, kHelRightManage, kHelErrNone,
				"helSetPriority");
		// A thread created stopped is interrupted: an observer sees that at once, and an ended
		// thread would give kHelErrThreadTerminated instead.
		auto observed = sq_call(dispatcher_, kHelSubmitObserve, HelSqObserve{thread});
		expect_gate(observed.error(), rights, kHelRightWait, kHelErrNone, "Observe");
		// Its register image: loading needs Read, storing Write (the words loaded, or zeros
		// without Read: the thread has not started, nothing reads its general registers).
		HelWord image[kHelNumGprs] = {};
		expect_gate(helLoadRegisters(thread, kHelRegsGeneral, image), rights, kHelRightRead,
				kHelErrNone, "helLoadRegisters");
		expect_gate(helStoreRegisters(thread, kHelRegsGeneral, image), rights, kHelRightWrite,
				kHelErrNone, "helStoreRegisters");
		// An interrupt of a thread already interrupted is kept for after its resume.
		expect_gate(helInterruptThread(thread), rights, kHelRightSignal, kHelErrNone,
				"helInterruptThread");
	}

	// ------------------------------------------------------------ copy-on-write views

	void copy_on_write() {
		// A fresh copy-on-write view's rights, from a source with all of its own.
		{
			HelHandle source = tagged_memory(), full = kHelNullHandle;
			ASSERT_EQ(helCopyOnWrite(source, 0, kPage, &full), kHelErrNone);
			cow_rights_ = info_of(full).rights;
			EXPECT_TRUE(has(cow_rights_, kHelRightDerive)) << "a fresh copy-on-write view";
			close(full);
			close(source);
		}
		for (int r = 0; r < kRounds; ++r) {
			HelHandle source = tagged_memory();
			std::uint32_t mask = rng_.exposed(kMemoryRights);
			HelHandle narrow = narrowed(source, mask);
			std::uint32_t source_rights = info_of(narrow).rights;
			HelHandle cow = kHelNullHandle;
			HelError error = helCopyOnWrite(narrow, 0, kPage, &cow);
			expect_gate(error, source_rights, kHelRightRead | kHelRightAssign, kHelErrNone,
					"helCopyOnWrite");
			close(narrow);
			close(source);
			if (error != kHelErrNone)
				continue;
			// A private copy gets the kind's rights, but never Execute its source lacked.
			std::uint32_t cow_rights = info_of(cow).rights;
			EXPECT_EQ(cow_rights,
					has(source_rights, kHelRightExecute)
							? cow_rights_
							: cow_rights_ & ~std::uint32_t{kHelRightExecute})
					<< "from a source with rights " << source_rights;
			Trip t = trip(cow, cow_rights_);
			map_gates(t.home, t.home_rights, "copy-on-write view");
			auto forked = sq_call(dispatcher_, kHelSubmitForkMemory, HelSqForkMemory{t.home});
			expect_gate(forked.error(), t.home_rights, kHelRightRead | kHelRightDerive, kHelErrNone,
					"ForkMemory");
			if (forked.error() == kHelErrNone)
				fork_outlives_parent(forked.as<HelHandleResult>().handle, cow, t);
			else
				close_all(cow, t);
		}
	}

	void close_all(HelHandle cow, const Trip &t) {
		close(t.home);
		close(cow);
		close_away(t.away);
	}

	// The fork has its parent's rights, never more; sent to the remote universe, it keeps its
	// page after every handle to its parent is gone.
	void fork_outlives_parent(HelHandle fork, HelHandle cow, const Trip &parent) {
		EXPECT_EQ(info_of(fork).rights, parent.home_rights);
		Trip t = trip(fork, cow_rights_);
		close(fork);
		close(t.home);
		close_all(cow, parent);
		HelHandle copy = probe(t.away);
		EXPECT_EQ(info_of(copy).type, kHelDescMemoryView);
		EXPECT_EQ(info_of(copy).rights, t.away_rights);
		if (has(t.away_rights, kHelRightRead | kHelRightAssign)) {
			EXPECT_EQ(read_word(copy), kTag);
		}
		close(copy);
		close_away(t.away);
	}

	// ------------------------------------------------------------ other memory kinds

	// Rounds over memory views of the kinds the allocation walk does not make: indirect
	// memory showing a tagged page, swappable memory, both views of managed memory, and a
	// hardware view (helAccessPhysical) of a tagged RAM page. Each has its kind's default
	// rights; a trip never grows them; Assign with Read (and Write) gates mapping; the remote
	// copy keeps the view, and what it shows, after every local handle is gone.
	void memory_kinds(HelHandle hardware_token) {
		for (int r = 0; r < kRounds; ++r) {
			{
				HelHandle shown = tagged_memory(), indirect = kHelNullHandle;
				ASSERT_EQ(helCreateIndirectMemory(1, &indirect), kHelErrNone);
				ASSERT_EQ(helAlterMemoryIndirection(indirect, 0, shown, 0, kPage), kHelErrNone);
				close(shown); // the indirect view holds what its slot shows
				memory_round(indirect, kIndirectRights, "indirect view", true);
			}
			{
				HelHandle backing = kHelNullHandle, swap = kHelNullHandle, view = kHelNullHandle;
				ASSERT_EQ(helCreateSwapSpace(0, &backing, &swap), kHelErrNone);
				ASSERT_EQ(helAllocateSwappableMemory(swap, kPage, 0, &view), kHelErrNone);
				tag(view);
				memory_round(view, kMemoryRights, "swappable view", true);
				close(swap);
				close(backing);
			}
			{
				HelHandle backing = kHelNullHandle, frontal = kHelNullHandle;
				ASSERT_EQ(helCreateManagedMemory(kPage, 0, &backing, &frontal), kHelErrNone);
				// The backing view is the pager's, always present; the frontal view's pages
				// need a pager, so its round only maps it (a mapping touches no page).
				tag(backing);
				memory_round(backing, kMemoryRights, "managed backing view", true);
				memory_round(frontal, kMemoryRights, "managed frontal view", false);
			}
			{
				HelHandle ram = kHelNullHandle;
				ASSERT_EQ(helAllocateMemory(kPage, kHelAllocContinuous, nullptr, &ram),
						kHelErrNone);
				tag(ram);
				std::uintptr_t physical = physical_of(ram);
				HelHandle hardware = kHelNullHandle;
				ASSERT_EQ(helAccessPhysical(hardware_token, physical, kPage, kHelCachingDefault,
								  &hardware),
						kHelErrNone);
				memory_round(hardware, kMemoryRights, "hardware view", true);
				close(ram); // only now: the hardware view owns no frame
			}
		}
	}

	// One round over `view` (all of its kind's rights, `kind`), which it closes. `tagged`: the
	// view's first word is kTag and may be read.
	void memory_round(HelHandle view, std::uint32_t kind, const char *what, bool tagged) {
		EXPECT_EQ(info_of(view).rights, kind) << what;
		Trip t = trip(view, kind);
		map_gates(t.home, t.home_rights, what);
		close(t.home);
		close(view);
		HelHandle copy = probe(t.away);
		EXPECT_EQ(info_of(copy).type, kHelDescMemoryView);
		EXPECT_EQ(info_of(copy).rights, t.away_rights);
		if (tagged && has(t.away_rights, kHelRightRead | kHelRightAssign)) {
			EXPECT_EQ(read_word(copy), kTag) << what << " through the remote copy alone";
		}
		close(copy);
		close_away(t.away);
	}

	// Writes kTag into the first word of `memory`, through a mapping.
	static void tag(HelHandle memory) {
		void *pointer = nullptr;
		ASSERT_EQ(helMapMemory(memory, kHelNullHandle, nullptr, 0, kPage,
						  kHelMapProtRead | kHelMapProtWrite, &pointer),
				kHelErrNone);
		*static_cast<volatile std::uint64_t *>(pointer) = kTag;
		EXPECT_EQ(helUnmapMemory(kHelNullHandle, pointer, kPage), kHelErrNone);
	}

	static std::uintptr_t physical_of(HelHandle memory) {
		void *pointer = nullptr;
		EXPECT_EQ(helMapMemory(memory, kHelNullHandle, nullptr, 0, kPage, kHelMapProtRead,
						  &pointer),
				kHelErrNone);
		std::uintptr_t physical = 0;
		EXPECT_EQ(helPointerPhysical(kHelNullHandle, pointer, &physical), kHelErrNone);
		EXPECT_EQ(helUnmapMemory(kHelNullHandle, pointer, kPage), kHelErrNone);
		return physical;
	}

	static HelHandle tagged_memory() {
		HelHandle h = kHelNullHandle;
		EXPECT_EQ(helAllocateMemory(kPage, 0, nullptr, &h), kHelErrNone);
		tag(h);
		return h;
	}

	static std::uint64_t read_word(HelHandle memory) {
		void *pointer = nullptr;
		EXPECT_EQ(helMapMemory(memory, kHelNullHandle, nullptr, 0, kPage, kHelMapProtRead,
						  &pointer),
				kHelErrNone);
		if (!pointer)
			return 0;
		std::uint64_t word = *static_cast<volatile std::uint64_t *>(pointer);
		EXPECT_EQ(helUnmapMemory(kHelNullHandle, pointer, kPage), kHelErrNone);
		return word;
	}

private:
	Rng rng_;
	HelHandle remote_ = kHelNullHandle;
	std::uint32_t cow_rights_ = 0;
	helsim::Dispatcher dispatcher_;
};

// The threads the rounds create stopped end killed, when their last handle is closed. The
// driver's first handle is the machine's hardware access token.
template <typename Body>
void rounds(Body body) {
	helsim::testing::for_each_seed(
			[&](std::uint64_t seed) {
				helsim::Machine machine{helsim::testing::deterministic(seed)};
				HelHandle token = machine.hardware_access_token();
				machine.spawn("driver",
						[&](std::span<const HelHandle> handles) {
							Rounds rounds{seed};
							body(rounds, handles[0]);
						},
						{token});
				expect_clean(machine.run(),
						{helsim::ThreadOutcome::returned, helsim::ThreadOutcome::killed});
			},
			40);
}

TEST(CapabilityProperties, QueueRightsGateAndSurviveTransfer) {
	rounds([](Rounds &r, HelHandle) { r.queues(); });
}

TEST(CapabilityProperties, SpaceRightsGateMappingAndAccess) {
	rounds([](Rounds &r, HelHandle) { r.spaces(); });
}

TEST(CapabilityProperties, LaneClosesOnlyWithItsLastHandle) {
	rounds([](Rounds &r, HelHandle) { r.lanes(); });
}

TEST(CapabilityProperties, AcceptedLanesCloseOnlyWithTheirLastHandle) {
	rounds([](Rounds &r, HelHandle) { r.lanes(true); });
}

TEST(CapabilityProperties, ThreadRightsGateAndTheRemoteCopyKeepsItAlive) {
	rounds([](Rounds &r, HelHandle) { r.threads(); });
}

TEST(CapabilityProperties, CopyOnWriteAndForksNeverGainRights) {
	rounds([](Rounds &r, HelHandle) { r.copy_on_write(); });
}

TEST(CapabilityProperties, IndirectSwappableManagedAndHardwareMemoryNeverGainRights) {
	rounds([](Rounds &r, HelHandle token) { r.memory_kinds(token); });
}

} // namespace
