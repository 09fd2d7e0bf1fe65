#include "interpreter.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include <helsim/hel.h>

#include "choices.hpp"
#include "kernel/core/kernel.hpp"
#include "ring.hpp"

namespace helsim::fuzz {

Program Program::parse(std::span<const std::uint8_t> input) {
	Program p;
	if (input.empty())
		return p;
	p.deterministic = input[0] & 1;
	for (std::size_t i = 1; i < kHeaderSize && i < input.size(); ++i)
		p.seed = p.seed << 8 | input[i];
	for (std::size_t at = kHeaderSize; at + kRecordSize <= input.size(); at += kRecordSize) {
		std::array<std::uint8_t, kRecordSize> record;
		std::copy_n(input.begin() + static_cast<std::ptrdiff_t>(at), kRecordSize, record.begin());
		p.records[record[0] >> 7].push_back(record);
	}
	return p;
}

CallTables CallTables::of(Machine &machine) {
	CallTables t;
	const auto &calls = machine.kernel_for_extensions().calls();
	for (std::uint32_t n = 0; n < kSyscallSlots; ++n)
		if (calls.syscall_entry(n)) {
			const auto &row = calls.syscall_row(n);
			t.syscalls.push_back({n, row.name, row.params ? row.params : ""});
		}
	for (std::uint32_t op = 0; op < ext::kSqOpcodeSlots; ++op) {
		const auto &row = calls.sq_opcode_row(op);
		if (row.fn || row.handler)
			t.sq_opcodes.push_back(op);
	}
	return t;
}

namespace {

constexpr std::size_t kPage = 4096;
constexpr std::size_t kScratchSize = 4 * kPage;
constexpr std::size_t kObjectSize = 4 * kPage;
// Completions of the harness's own SQ operations carry this tag, the thread and a serial.
constexpr std::uintptr_t kContextTag = 0x5a5a'0000'0000'0000;
constexpr std::uintptr_t kContextTagMask = 0xffff'0000'0000'0000;
// How long a thread waits for another before it resumes, then kills it (rounds of a nap).
constexpr int kWaitRounds = 200;
constexpr std::uint64_t kNapNs = 20'000;

// The harness's words in simulated memory: strict memory accepts only mapped pointers, so
// everything the kernel reads or waits on lives here.
struct Control {
	HelQueueParameters params[3];
	int pager_stop; // futex word: the pager may end
	int never;      // stays 0: a futex word to sleep on until a deadline
};

// The prepared area of a thread: an action list and a scatter-gather list, rewritten from the
// record's choices whenever a pointer argument picks it.
struct Prepared {
	HelAction actions[16];
	HelSgItem sg[8];
};

struct Shared {
	const Program *program = nullptr;
	const CallTables *tables = nullptr;
	Findings *findings = nullptr;
	Control *control = nullptr;
	Prepared *prepared = nullptr; // [2]
	std::byte *scratch = nullptr;
	std::byte *readonly = nullptr;
	std::byte *unmapped = nullptr;
	std::byte *frontal = nullptr; // the managed memory's frontal view, mapped
	HelHandle backing = kHelNullHandle;

	std::mutex mutex; // the pools: one thread draws foreign handles from the other's
	std::array<std::vector<HelHandle>, 2> live;
	std::array<std::vector<HelHandle>, 2> closed;
	std::uint64_t latest_deadline = 0; // of the AwaitClock elements either thread built
};

void idle_entry(std::uintptr_t) {}

// HELSIM_FUZZ_VERBOSE=1: every call and SQ element on stderr, to read what an input does.
bool verbose() {
	static const bool on = std::getenv("HELSIM_FUZZ_VERBOSE") != nullptr;
	return on;
}

unsigned long long ull(std::uint64_t word) { return word; }

std::uint64_t clock_now() {
	std::uint64_t now = 0;
	helGetClock(&now);
	return now;
}

// A bounded sleep on a futex word in simulated memory.
void nap(int *word, int seen) {
	helFutexWait(word, seen, static_cast<std::int64_t>(clock_now() + kNapNs));
}

class Actor {
public:
	Actor(Shared &shared, int self) : s_{shared}, self_{self} {}

	bool open_ring() { return ring_.create(&s_.control->params[self_]); }
	HelHandle ring_handle() const { return ring_.handle(); }

	void run(const std::vector<std::array<std::uint8_t, kRecordSize>> &records) {
		for (const auto &r : records) {
			Choices c{std::span{r}.subspan(2)};
			switch (static_cast<RecordKind>((r[0] & 0x7f) % 3)) {
			case RecordKind::syscall: syscall(r[1], c); break;
			case RecordKind::sq: sq(r[1], c); break;
			case RecordKind::drain: drain(); break;
			}
		}
		// AwaitClock operations end by themselves (their deadlines are close): wait for them
		// rather than leave them pending when the machine stops. The wait is bounded by the
		// clock, not only by a count of naps: the program may overwrite the word a nap sleeps
		// on, and then every nap returns at once, long before the latest deadline. A clock
		// past a deadline does not mean its timer fired: timers fire in the scheduler, which
		// a thread whose naps return at once may never enter. So one more round follows the
		// clock passing the deadline, and every round yields (a pass of the scheduler).
		bool past = false;
		for (int round = 0; outstanding() > 0 && (round < 20 || !past); ++round) {
			past = clock_now() > latest_deadline_;
			drain();
			nap(&s_.control->never, 0);
			helYield();
		}
		end_created_threads();
		drain();
		if (verbose())
			for (std::size_t serial = 0; serial < seen_.size(); ++serial)
				if (sq_[serial] && !seen_[serial])
					std::fprintf(stderr, "[%c] no completion (yet) for SQ element %zu\n",
							'a' + self_, serial);
		// The program may have written over the ring (a copy whose target runs into its
		// mapping): the queue then holds completions for a CQ nobody supplies, and they die
		// with the queue, neither delivered nor lost by the kernel. Each operation that may
		// complete to it and has not been seen to may be one of them.
		if (ring_.broken()) {
			std::size_t unseen = static_cast<std::size_t>(
					std::count(seen_.begin(), seen_.end(), std::uint8_t{0}));
			if (verbose())
				std::fprintf(stderr, "[%c] ring abandoned: %zu operations may stay pending\n",
						'a' + self_, unseen);
			s_.findings->may_stay_pending(unseen);
		}
	}

	// A thread the program created holds the universe it runs in, and that universe may hold
	// the thread's handle: a cycle that only the thread's end breaks, in thor as here. A thread
	// created stopped and never resumed, or interrupted and left so, never ends by itself, so
	// the interpreter kills every thread it created, as a program's teardown would (a universe
	// never hands a value out twice: once the program closed the handle, the kill just fails).
	void end_created_threads() {
		for (HelHandle thread : created_threads_) {
			HelError e = helKillThread(thread);
			if (verbose())
				std::fprintf(stderr, "[%c] kills created thread handle %d: %d\n", 'a' + self_,
						int(thread), e);
		}
	}

	// Elements submitted whose completion (or rejection, context ~0) has not arrived yet.
	std::size_t outstanding() const {
		std::size_t ended = sq_completed_ + rejected_;
		return ended >= sq_submitted_ ? 0 : sq_submitted_ - ended;
	}

	void drain() {
		ring_.drain([&](std::uintptr_t context, std::span<const std::byte> payload) {
			if (verbose()) {
				HelError e = kHelErrNone;
				std::memcpy(&e, payload.data(), std::min(payload.size(), sizeof(e)));
				std::fprintf(stderr, "[%c] completion %#llx: %d\n", 'a' + self_, ull(context), e);
			}
			if (context == ~std::uintptr_t{0})
				++rejected_;
			if ((context & kContextTagMask) != kContextTag ||
					(context >> 32 & 0xffff) != unsigned(self_))
				return;
			std::size_t serial = context & 0xffff'ffff;
			if (serial >= seen_.size()) {
				s_.findings->add("a completion for an SQ element never submitted: context " +
						std::to_string(context));
				return;
			}
			if (sq_[serial] && seen_[serial] == 0)
				++sq_completed_;
			if (++seen_[serial] > 1)
				s_.findings->add("SQ element " + std::to_string(serial) + " of thread " +
						std::to_string(self_) + " completed twice");
		});
	}

	void add_live(HelHandle h) {
		std::lock_guard lock{s_.mutex};
		s_.live[self_].push_back(h);
	}

private:
	HelHandle handle(Choices &c) {
		std::uint8_t k = c.byte();
		std::uint8_t v = c.byte();
		std::lock_guard lock{s_.mutex};
		const auto &live = s_.live[self_];
		const auto &closed = s_.closed[self_];
		const auto &foreign = s_.live[1 - self_];
		switch (k % 8) {
		case 3:
			if (!closed.empty())
				return closed[v % closed.size()];
			break;
		case 4:
			if (!foreign.empty())
				return foreign[v % foreign.size()];
			break;
		case 5: {
			static constexpr HelHandle kPseudo[] = {kHelNullHandle, kHelThisUniverse,
					kHelThisThread, kHelZeroMemory};
			return kPseudo[v % 4];
		}
		case 6: {
			// Forged: far from the small numbers a universe hands out, or negative.
			static constexpr HelHandle kForged[] = {0x10000, 0x7fffffff, -4, -1000, 1 << 30};
			return kForged[v % 5] + (v >> 4);
		}
		default: break;
		}
		return live.empty() ? kHelNullHandle : live[v % live.size()];
	}

	// `prepared`: whether the prepared area may be chosen (not from inside prepare()).
	std::uintptr_t pointer(Choices &c, bool prepared = true) {
		std::uint8_t k = c.byte();
		std::uint8_t v = c.byte();
		auto at = [](std::byte *base, std::size_t offset) {
			return reinterpret_cast<std::uintptr_t>(base) + offset;
		};
		switch (k % 9) {
		case 0:
		case 1: return at(s_.scratch, (std::size_t{v} * 64) % kScratchSize);
		case 2: return at(s_.readonly, (std::size_t{v} * 16) % kPage);
		case 3: return at(s_.scratch, 1 + (std::size_t{v} * 8) % kScratchSize);
		case 4: return at(s_.unmapped, v);
		case 5: {
			static constexpr std::uintptr_t kWild[] = {0, 1, 0xfff, 0x10000, 0xdead'0000,
					0x0000'8000'0000'0000, 0xffff'8000'0000'0000, ~std::uintptr_t{0} - 15};
			return kWild[v % 8];
		}
		case 6: return prepared ? prepare(c) : at(s_.scratch, v);
		case 7: return at(s_.scratch, kScratchSize - v % 64);
		default: return at(s_.frontal, (std::size_t{v} * 64) % kObjectSize);
		}
	}

	HelAction action(Choices &c) {
		static constexpr int kTypes[] = {kHelActionOffer, kHelActionAccept,
				kHelActionImbueCredentials, kHelActionExtractCredentials, kHelActionSendFromBuffer,
				kHelActionSendFromBufferSg, kHelActionRecvInline, kHelActionRecvToBuffer,
				kHelActionPushDescriptor, kHelActionPullDescriptor, kHelActionDismiss,
				kHelActionNone};
		HelAction a{};
		std::uint8_t t = c.byte();
		a.type = t < 240 ? kTypes[t % 12] : static_cast<int>(c.word());
		std::uint8_t f = c.byte();
		a.flags = (f & 1 ? kHelItemChain : 0u) | (f & 2 ? kHelItemAncillary : 0u) |
				(f & 4 ? kHelItemWantLane : 0u) |
				(f >= 0xf0 ? static_cast<std::uint32_t>(c.word()) : 0u);
		switch (a.type) {
		case kHelActionPushDescriptor:
		case kHelActionImbueCredentials:
			a.rights = static_cast<std::uint32_t>(c.any());
			a.handle = handle(c);
			break;
		case kHelActionPullDescriptor: a.rights = static_cast<std::uint32_t>(c.any()); break;
		case kHelActionSendFromBufferSg:
			a.buffer = &s_.prepared[self_].sg[0];
			a.length = c.byte() % 10;
			break;
		default:
			a.word0 = c.byte() & 1 ? pointer_plain(c) : c.any();
			a.length = c.length();
			break;
		}
		return a;
	}

	// A pointer that is not the prepared area (which an action list itself lives in).
	std::uintptr_t pointer_plain(Choices &c) { return pointer(c, false); }

	// Writes a fresh action list and scatter-gather list into the prepared area.
	std::uintptr_t prepare(Choices &c) {
		Prepared &p = s_.prepared[self_];
		for (auto &item : p.sg)
			item = {reinterpret_cast<void *>(pointer_plain(c)),
					static_cast<std::size_t>(c.length())};
		std::size_t n = c.byte() % 16;
		for (std::size_t i = 0; i < n; ++i)
			p.actions[i] = action(c);
		return reinterpret_cast<std::uintptr_t>(&p);
	}

	// ---------------------------------------------------------------- syscalls

	void syscall(std::uint8_t row, Choices &c) {
		const auto &table = s_.tables->syscalls;
		if (row == 0xff) {
			std::uint32_t number = c.byte() | std::uint32_t{c.byte()} << 8;
			HelWord args[9]{};
			for (int i = 0; i < 6; ++i)
				args[i] = c.any();
			HelWord outs[3]{};
			// A number with a row goes through the table (and its exclusions) instead.
			if (std::none_of(table.begin(), table.end(),
						[&](const SyscallShape &s) { return s.number == number; }))
				helsim_syscall(number, args, outs);
			return;
		}
		call(table[row % table.size()], c);
	}

	void call(const SyscallShape &shape, Choices &c) {
		std::string_view name = shape.name;
		// helPanic ends the calling thread by design, which would leave the others waiting.
		if (name == "helPanic")
			return;
		HelWord args[9]{};
		HelWord outs[3]{};
		std::vector<bool> out_is_handle;
		std::string_view params = shape.params;
		std::size_t n = 0;
		bool outputs = false;
		if (params.empty())
			for (; n < 6; ++n)
				args[n] = c.any();
		while (!params.empty()) {
			std::size_t end = params.find(' ');
			std::string_view token = params.substr(0, end);
			params = end == std::string_view::npos ? std::string_view{} : params.substr(end + 1);
			if (token == ">") {
				outputs = true;
				continue;
			}
			if (outputs) {
				out_is_handle.push_back(token.starts_with('*'));
				continue;
			}
			if (n == 9)
				break;
			args[n++] = argument(name, token, c);
		}
		if (!allowed(name, args))
			return;
		HelError e = helsim_syscall(shape.number, args, outs);
		if (verbose())
			std::fprintf(stderr, "[%c] %s(%s) %#llx %#llx %#llx %#llx %#llx %#llx = %d\n",
					'a' + self_, shape.name.c_str(), shape.params.c_str(), ull(args[0]),
					ull(args[1]), ull(args[2]), ull(args[3]), ull(args[4]), ull(args[5]), e);
		if (e != kHelErrNone)
			return;
		for (std::size_t i = 0; i < out_is_handle.size() && i < 3; ++i)
			if (out_is_handle[i])
				add_live(static_cast<HelHandle>(outs[i]));
		if (name == "helCreateThread")
			created_threads_.push_back(static_cast<HelHandle>(outs[0]));
		if (name == "helCloseDescriptor" && static_cast<HelHandle>(args[0]) == kHelThisUniverse) {
			std::lock_guard lock{s_.mutex};
			auto &live = s_.live[self_];
			auto h = static_cast<HelHandle>(args[1]);
			live.erase(std::remove(live.begin(), live.end(), h), live.end());
			s_.closed[self_].push_back(h);
		}
	}

	HelWord argument(std::string_view call, std::string_view token, Choices &c) {
		if (token.starts_with('*'))
			return static_cast<HelWord>(handle(c));
		// An asynchronous call's completion carries a context the harness can account for.
		if (token == "&context")
			return next_context();
		if (token == "&ip")
			return reinterpret_cast<HelWord>(&idle_entry);
		if (token.starts_with('&'))
			return pointer(c);
		// A wait must end: the interpreter's own deadline, never kHelWaitInfinite.
		if (token == "deadline")
			return clock_now() + c.byte() * 1000u;
		if (call == "helDriveQueue" && token == "flags")
			return c.any() & ~HelWord{kHelDriveWait};
		return c.any();
	}

	// Calls whose documented effect the harness could not survive.
	static bool allowed(std::string_view name, const HelWord *args) {
		auto h = static_cast<HelHandle>(args[0]);
		// Stopping or killing the interpreter's own thread ends the program mid-way.
		if ((name == "helKillThread" || name == "helInterruptThread") && h == kHelThisThread)
			return false;
		// A register image that moves ip or sp sends the fiber to an address it never had.
		if (name == "helStoreRegisters") {
			auto set = static_cast<int>(args[1]);
			if (set == kHelRegsProgram || set == kHelRegsSignal)
				return false;
		}
		return true;
	}

	// ---------------------------------------------------------------- SQ operations

	template <typename T>
	static void append(std::vector<std::byte> &out, const T &value) {
		auto bytes = std::as_bytes(std::span{&value, 1});
		out.insert(out.end(), bytes.begin(), bytes.end());
	}

	void sq(std::uint8_t row, Choices &c) {
		const auto &ops = s_.tables->sq_opcodes;
		std::uint32_t opcode =
				row == 0xff ? c.byte() | std::uint32_t{c.byte()} << 8 : ops[row % ops.size()];
		std::vector<std::byte> payload;
		switch (opcode) {
		case kHelSubmitAsyncNop: break;
		case kHelSubmitCancel: append(payload, HelSqCancel{c.byte() % 4u}); break;
		case kHelSubmitExchangeMsgs: {
			std::size_t n = c.byte() % 9;
			HelSqExchangeMsgs header{handle(c), n, static_cast<std::uint32_t>(c.any())};
			if (c.byte() >= 224)
				header.count = c.length();
			append(payload, header);
			for (std::size_t i = 0; i < n; ++i)
				append(payload, action(c));
			break;
		}
		case kHelSubmitAwaitClock: {
			HelSqAwaitClock await{clock_now() + c.byte() * 1000u, c.byte() % 4u};
			latest_deadline_ = std::max(latest_deadline_, await.counter);
			{
				std::lock_guard lock{s_.mutex};
				s_.latest_deadline = std::max(s_.latest_deadline, await.counter);
			}
			append(payload, await);
			break;
		}
		case kHelSubmitAwaitEvent:
			append(payload, HelSqAwaitEvent{handle(c), c.any(), c.byte() % 4u});
			break;
		case kHelSubmitProtectMemory:
			append(payload,
					HelSqProtectMemory{handle(c), reinterpret_cast<void *>(pointer(c)), c.length(),
							static_cast<std::uint32_t>(c.any())});
			break;
		case kHelSubmitSynchronizeSpace:
			append(payload,
					HelSqSynchronizeSpace{handle(c), reinterpret_cast<void *>(pointer(c)),
							c.length()});
			break;
		case kHelSubmitReadMemory:
			append(payload,
					HelSqReadMemory{handle(c), pointer(c), c.length(),
							reinterpret_cast<void *>(pointer(c))});
			break;
		case kHelSubmitWriteMemory:
			append(payload,
					HelSqWriteMemory{handle(c), pointer(c), c.length(),
							reinterpret_cast<const void *>(pointer(c))});
			break;
		case kHelSubmitManageMemory: append(payload, HelSqManageMemory{handle(c)}); break;
		case kHelSubmitObserve: append(payload, HelSqObserve{handle(c)}); break;
		case kHelSubmitForkMemory: append(payload, HelSqForkMemory{handle(c)}); break;
		case kHelSubmitResizeMemory:
			append(payload, HelSqResizeMemory{handle(c), c.length()});
			break;
		case kHelSubmitPopulateSpace:
			append(payload, HelSqPopulateSpace{handle(c), pointer(c), c.length()});
			break;
		default: {
			// LockMemoryView, WritebackFence, InvalidateMemory and whatever an extension
			// registers: a handle, then words.
			append(payload, HelSqLockMemoryView{handle(c), c.length(), c.length()});
			break;
		}
		}
		// A truncated payload: every operation must refuse a short element.
		if (std::uint8_t t = c.byte(); t >= 240 && !payload.empty())
			payload.resize(t % payload.size());
		std::uintptr_t context = next_context();
		sq_.back() = true;
		if (verbose()) {
			std::fprintf(stderr, "[%c] SQ opcode %u, %zu bytes, context %#llx:", 'a' + self_,
					opcode, payload.size(), ull(context));
			for (std::size_t at = 0; at + sizeof(HelWord) <= payload.size();
					at += sizeof(HelWord)) {
				HelWord word = 0;
				std::memcpy(&word, payload.data() + at, sizeof(word));
				std::fprintf(stderr, " %#llx", ull(word));
			}
			std::fprintf(stderr, "\n");
		}
		if (!ring_.submit(opcode, context, payload)) {
			sq_.back() = false;
			return;
		}
		++sq_submitted_;
	}

	std::uintptr_t next_context() {
		seen_.push_back(0);
		sq_.push_back(false);
		return kContextTag | std::uintptr_t(self_) << 32 | (seen_.size() - 1);
	}

	Shared &s_;
	int self_;
	Ring ring_;
	std::vector<std::uint8_t> seen_; // completions seen, by serial
	std::vector<bool> sq_;           // by serial: submitted on the thread's own ring
	std::size_t sq_submitted_ = 0;
	std::size_t sq_completed_ = 0;
	std::size_t rejected_ = 0;
	std::uint64_t latest_deadline_ = 0;      // of the AwaitClock elements built so far
	std::vector<HelHandle> created_threads_; // by helCreateThread, in this universe
};

// Maps `size` bytes of a new memory object with `flags`; nullptr if that failed.
std::byte *map_new(std::size_t size, std::uint32_t flags, HelHandle *handle = nullptr) {
	HelHandle memory = kHelNullHandle;
	if (helAllocateMemory(size, 0, nullptr, &memory) != kHelErrNone)
		return nullptr;
	void *p = nullptr;
	HelError e = helMapMemory(memory, kHelNullHandle, nullptr, 0, size, flags, &p);
	if (handle)
		*handle = memory;
	else
		helCloseDescriptor(kHelThisUniverse, memory);
	return e == kHelErrNone ? static_cast<std::byte *>(p) : nullptr;
}

// The objects of every kind the program starts with, in thread A's pool.
void make_objects(Actor &a, Shared &s) {
	auto keep = [&](HelHandle h) {
		if (h != kHelNullHandle)
			a.add_live(h);
	};
	HelHandle plain = kHelNullHandle, demand = kHelNullHandle, continuous = kHelNullHandle;
	helAllocateMemory(kObjectSize, 0, nullptr, &plain);
	helAllocateMemory(kObjectSize, kHelAllocOnDemand, nullptr, &demand);
	helAllocateMemory(kObjectSize, kHelAllocContinuous, nullptr, &continuous);
	keep(plain);
	keep(demand);
	keep(continuous);
	HelHandle h = kHelNullHandle;
	if (helCreateSliceView(plain, kPage, 2 * kPage, 0, &h) == kHelErrNone)
		keep(h);
	if (helCopyOnWrite(plain, 0, 2 * kPage, &h) == kHelErrNone)
		keep(h);
	if (helCreateIndirectMemory(2, &h) == kHelErrNone) {
		helAlterMemoryIndirection(h, 0, plain, 0, kPage);
		keep(h);
	}
	HelHandle swap_backing = kHelNullHandle, swap = kHelNullHandle;
	if (helCreateSwapSpace(0, &swap_backing, &swap) == kHelErrNone) {
		keep(swap_backing);
		keep(swap);
		if (helAllocateSwappableMemory(swap, kObjectSize, 0, &h) == kHelErrNone)
			keep(h);
	}
	HelHandle frontal = kHelNullHandle;
	if (helCreateManagedMemory(kObjectSize, 0, &s.backing, &frontal) == kHelErrNone) {
		keep(frontal);
		void *p = nullptr;
		if (helMapMemory(frontal, kHelNullHandle, nullptr, 0, kObjectSize,
					kHelMapProtRead | kHelMapProtWrite, &p) == kHelErrNone)
			s.frontal = static_cast<std::byte *>(p);
	}
	if (helCreateSpace(&h) == kHelErrNone)
		keep(h);
	if (helCreateOneshotEvent(&h) == kHelErrNone)
		keep(h);
	if (helCreateBitsetEvent(&h) == kHelErrNone)
		keep(h);
	if (helCreateToken(&h) == kHelErrNone)
		keep(h);
	keep(a.ring_handle());
}

// The pager of the managed memory: answers every request until told to stop, or until it has
// been idle for long (the program may have unmapped the control page it is told through).
void pager_entry(std::uintptr_t argument) {
	auto &s = *reinterpret_cast<Shared *>(argument);
	Ring ring;
	if (!ring.create(&s.control->params[2]))
		return;
	// The request outstanding when the pager ends stays pending (ManageMemory cannot be
	// cancelled); fuzz_main.cpp's check knows what that keeps alive.
	auto request = [&] {
		HelSqManageMemory m{s.backing};
		return ring.submit(kHelSubmitManageMemory, 1, std::as_bytes(std::span{&m, 1}));
	};
	bool serving = request();
	for (int idle = 0; serving && idle < 50 * kWaitRounds; ++idle) {
		bool worked = false;
		ring.drain([&](std::uintptr_t, std::span<const std::byte> payload) {
			HelManageResult r{};
			std::memcpy(&r, payload.data(), std::min(payload.size(), sizeof(r)));
			if (r.error != kHelErrNone) {
				serving = false;
				return;
			}
			helUpdateMemory(s.backing, r.type, r.offset, r.length);
			serving = request();
			worked = true;
		});
		if (worked)
			idle = 0;
		if (__atomic_load_n(&s.control->pager_stop, __ATOMIC_ACQUIRE))
			break;
		nap(&s.control->pager_stop, 0);
	}
	// Its outstanding request may have completed into a ring the program wrote over (see
	// Actor::run).
	if (serving && ring.broken())
		s.findings->may_stay_pending(1);
}

// Waits until `thread` has ended, asked of the kernel (words in user memory could be
// overwritten by the program): helResume answers kHelErrThreadTerminated for an ended thread,
// and an error about the handle once the program closed it, which killed the thread. A thread
// the program interrupted is resumed on the way; one still running in the end is killed.
void await_thread(Shared &s, HelHandle thread) {
	auto ended = [thread] {
		HelError e = helResume(thread);
		return e != kHelErrNone && e != kHelErrIllegalState;
	};
	// Bounded by the clock as well as by a count of naps: the program may void the nap's word
	// (see Actor::run), and a thread killed early leaves its AwaitClock operations pending.
	std::uint64_t until = clock_now() + kWaitRounds * kNapNs;
	for (int round = 0; round < kWaitRounds || clock_now() < until; ++round) {
		if (ended())
			return;
		nap(&s.control->never, 0);
		helYield();
	}
	if (verbose())
		std::fprintf(stderr, "[a] kills thread handle %d, which did not end\n", int(thread));
	helKillThread(thread);
	for (int round = 0; round < kWaitRounds && !ended(); ++round)
		nap(&s.control->never, 0);
}

void b_entry(std::uintptr_t argument) {
	auto &s = *reinterpret_cast<Shared *>(argument);
	Actor b{s, 1};
	if (b.open_ring())
		b.add_live(b.ring_handle());
	b.run(s.program->records[1]);
}

void a_entry(Shared &s) {
	HelHandle control_memory = kHelNullHandle;
	auto *control = map_new(2 * kPage, kHelMapProtRead | kHelMapProtWrite, &control_memory);
	s.scratch = map_new(kScratchSize, kHelMapProtRead | kHelMapProtWrite);
	s.readonly = map_new(kPage, kHelMapProtRead);
	s.unmapped = map_new(kPage, kHelMapProtRead | kHelMapProtWrite);
	static_assert(2 * sizeof(Prepared) <= kPage);
	auto *prepared = map_new(kPage, kHelMapProtRead | kHelMapProtWrite);
	if (!control || !s.scratch || !s.readonly || !s.unmapped || !prepared) {
		s.findings->add("the harness could not map its memory");
		return;
	}
	helUnmapMemory(kHelNullHandle, s.unmapped, kPage);
	s.control = new (control) Control{};
	s.prepared = new (prepared) Prepared[2]{};

	Actor a{s, 0};
	if (!a.open_ring()) {
		s.findings->add("the harness could not create its queue");
		return;
	}
	make_objects(a, s);

	// Thread B in a universe of its own, sharing the address space; a stream between them.
	HelHandle universe = kHelNullHandle, lane1 = kHelNullHandle, lane2 = kHelNullHandle;
	helCreateUniverse(&universe);
	helCreateStream(&lane1, &lane2, 1);
	a.add_live(universe);
	a.add_live(lane1);
	for (HelHandle h : {lane2, s.live[0].front()}) {
		HelHandle remote = kHelNullHandle;
		if (helTransferDescriptor(h, universe, kHelTransferDescriptorOut, kHelRightsMax, 0,
					&remote) == kHelErrNone) {
			std::lock_guard lock{s.mutex};
			s.live[1].push_back(remote);
		}
	}
	helCloseDescriptor(kHelThisUniverse, lane2);

	HelHandle pager = kHelNullHandle, b = kHelNullHandle;
	if (s.backing != kHelNullHandle)
		helCreateThread(kHelNullHandle, kHelNullHandle, kHelAbiSystemV,
				reinterpret_cast<void *>(&pager_entry), &s, 0, &pager);
	helCreateThread(universe, kHelNullHandle, kHelAbiSystemV, reinterpret_cast<void *>(&b_entry),
			&s, 0, &b);

	a.run(s.program->records[0]);

	if (b != kHelNullHandle)
		await_thread(s, b);
	// Before the pager stops: the program may have mapped managed memory over the ring.
	a.drain();
	__atomic_store_n(&s.control->pager_stop, 1, __ATOMIC_RELEASE);
	helFutexWake(&s.control->pager_stop, 1);
	if (pager != kHelNullHandle)
		await_thread(s, pager);
	// An AwaitClock completes at its deadline even when its thread was killed (one that did not
	// end in time): the machine ends only once the latest deadline has passed and the scheduler,
	// where timers fire, has run since (see Actor::run).
	std::uint64_t latest;
	{
		std::lock_guard lock{s.mutex};
		latest = s.latest_deadline;
	}
	for (bool past = false; !past;) {
		past = clock_now() > latest;
		nap(&s.control->never, 0);
		helYield();
	}
}

} // namespace

std::shared_ptr<void> start(Machine &machine, const Program &program, const CallTables &tables,
		Findings &findings) {
	auto shared = std::make_shared<Shared>();
	shared->program = &program;
	shared->tables = &tables;
	shared->findings = &findings;
	machine.spawn("fuzz-a", [s = shared.get()](std::span<const HelHandle>) { a_entry(*s); });
	return shared;
}

} // namespace helsim::fuzz
