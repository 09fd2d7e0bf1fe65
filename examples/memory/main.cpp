// memory: helsim's memory subsystem seen from user space, step by step.
//
// 1. Lazy memory: helAllocateMemory hands out no frames; helMapMemory creates no page table
//    entries. The first read of a page faults (a host SIGSEGV that helsim resolves) and maps a
//    zeroed frame; the page table entry then says present, accessed, not dirty. The first write
//    sets the dirty bit: the page was mirrored into the host read-only precisely so that this
//    write would fault and be seen.
// 2. A partial unmap splits the mapping: the pages around the hole keep their contents, the
//    hole has no page table entry, and the kernel's own accesses to it fail with kHelErrFault.
// 3. ProtectMemory to no access drops the entries; helLog, which has the kernel read the
//    buffer through the page tables, now fails with kHelErrFault. Restoring read/write brings
//    the same contents back.
// 4. A futex in memory that two universes and two address spaces map, at two different
//    addresses. Futexes are keyed by (memory object, offset), so a wake in the other space
//    reaches a waiter here.
//
// helsim::debug::page_table_entry reads the simulated page tables; the bit names are x86-64's.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>

#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace {

constexpr std::size_t kPage = 4096;
constexpr std::uint32_t kRW = kHelMapProtRead | kHelMapProtWrite;

// The entry bits helsim's page tables use (as on x86-64).
constexpr std::uint64_t kPresent = 1ull << 0;
constexpr std::uint64_t kWritable = 1ull << 1;
constexpr std::uint64_t kUser = 1ull << 2;
constexpr std::uint64_t kAccessed = 1ull << 5;
constexpr std::uint64_t kDirty = 1ull << 6;
constexpr std::uint64_t kNoExecute = 1ull << 63;
constexpr std::uint64_t kFrame = 0x000F'FFFF'FFFF'F000ull;

bool failed = false;

void check(HelError e, const char *what) {
	if (e != kHelErrNone) {
		std::printf("%s failed with HelError %d\n", what, e);
		char message[] = "memory: a hel call failed";
		helPanic(message, sizeof(message) - 1);
	}
}

void expect(bool ok, const char *what) {
	std::printf("   %s %s\n", ok ? "ok:    " : "FAILED:", what);
	failed |= !ok;
}

std::uint64_t pte(const volatile void *p) {
	return helsim::debug::page_table_entry(const_cast<const void *>(p));
}

std::string describe(std::uint64_t entry) {
	if (!entry)
		return "no entry";
	std::string text;
	auto bit = [&](std::uint64_t mask, const char *name) {
		if (entry & mask)
			text += std::string(text.empty() ? "" : " ") + name;
	};
	bit(kPresent, "present");
	bit(kWritable, "writable");
	bit(kUser, "user");
	bit(kAccessed, "accessed");
	bit(kDirty, "dirty");
	bit(kNoExecute, "no-execute");
	char frame[32];
	std::snprintf(frame, sizeof(frame), ", frame %#llx",
			static_cast<unsigned long long>(entry & kFrame));
	return text + frame;
}

void show(const char *when, const volatile void *p) {
	std::printf("   %-30s %s\n", when, describe(pte(p)).c_str());
}

// helLog has the kernel read [p, p + n) of the caller's space: a direct probe of whether the
// kernel may read that memory.
HelError log_from(const volatile void *p, std::size_t n) {
	return helLog(kHelLogSeverityInfo,
			const_cast<const char *>(static_cast<const volatile char *>(p)), n);
}

// Submits one SQ operation and waits for its result. An operation the kernel refuses at
// submission completes with context ~0 instead of its own.
template <typename T>
HelError sq_call(helsim::Dispatcher &dispatcher, std::uint32_t opcode, const T &payload) {
	static std::uintptr_t next_context = 1;
	std::uintptr_t context = next_context++;
	dispatcher.submit(opcode, context, payload);
	dispatcher.flush();
	for (;;) {
		auto element = dispatcher.wait();
		if (element && (element->context() == context || element->context() == ~std::uintptr_t{0}))
			return element->error();
	}
}

HelError protect(helsim::Dispatcher &dispatcher, volatile char *p, std::size_t size,
		std::uint32_t prot) {
	HelSqProtectMemory request{kHelNullHandle, const_cast<char *>(p), size, prot};
	return sq_call(dispatcher, kHelSubmitProtectMemory, request);
}

// Lives in the page both spaces map.
struct Shared {
	int word; // the futex: 0 until the other side has written `frame_there`
	std::uintptr_t frame_there;
};

// Runs in another universe (it holds no handles at all) and another address space, where the
// shared page sits at `argument`.
void other_side(std::uintptr_t argument) {
	auto *shared = reinterpret_cast<Shared *>(argument);
	std::uintptr_t frame = 0;
	// kHelNullHandle: this thread's own space, where `shared` is mapped.
	check(helPointerPhysical(kHelNullHandle, shared, &frame), "helPointerPhysical (other side)");
	shared->frame_there = frame;
	std::atomic_ref<int>{shared->word}.store(1, std::memory_order_release);
	check(helFutexWake(&shared->word, 1), "helFutexWake (other side)");
}

void lazy_memory(volatile char *p) {
	std::printf("1. lazy memory, demand-zero pages, accessed and dirty bits\n");
	show("after helMapMemory:", p);
	expect(pte(p) == 0, "mapping alone creates no page table entry");
	char first = p[0]; // faults in a zeroed frame
	show("after reading p[0]:", p);
	expect(first == 0, "a fresh page reads as zero");
	std::uint64_t read = pte(p);
	expect((read & (kPresent | kAccessed | kWritable)) == (kPresent | kAccessed | kWritable) &&
					!(read & kDirty),
			"present, accessed and writable, but not dirty: it was only read");
	p[1] = 'x';
	show("after writing p[1]:", p);
	expect(pte(p) & kDirty, "the write was seen: the host mirror was read-only until now");
	show("page 1, never touched:", p + kPage);
	expect(pte(p + kPage) == 0, "pages are faulted in one at a time");
	std::uintptr_t physical = 0;
	check(helPointerPhysical(kHelNullHandle, const_cast<char *>(p) + 5, &physical),
			"helPointerPhysical");
	expect(physical == (pte(p) & kFrame) + 5, "helPointerPhysical agrees with the entry");
}

void partial_unmap(volatile char *p) {
	std::printf("2. unmapping the middle of a mapping\n");
	for (std::size_t i = 0; i < 4; ++i)
		std::memset(const_cast<char *>(p) + i * kPage, 'a' + static_cast<int>(i), kPage);
	check(helUnmapMemory(kHelNullHandle, const_cast<char *>(p) + kPage, kPage), "helUnmapMemory");
	show("page 1 (unmapped):", p + kPage);
	expect(p[0] == 'a' && p[2 * kPage] == 'c' && p[3 * kPage] == 'd',
			"pages 0, 2 and 3 stay mapped with their contents");
	expect(log_from(p + kPage, 8) == kHelErrFault, "helLog from the hole: kHelErrFault");
	expect(log_from(p + kPage - 2, 4) == kHelErrFault,
			"helLog of a range that runs into the hole: kHelErrFault");
	expect(helUnmapMemory(kHelNullHandle, const_cast<char *>(p) + kPage, kPage) ==
					kHelErrIllegalArgs,
			"unmapping the hole again: kHelErrIllegalArgs");
}

void protection(helsim::Dispatcher &dispatcher, volatile char *p) {
	std::printf("3. ProtectMemory: no access, then read/write again\n");
	const char text[] = "this line was read from page 0 through the page tables";
	std::memcpy(const_cast<char *>(p), text, sizeof(text));
	check(protect(dispatcher, p, kPage, 0), "ProtectMemory(none)");
	show("after protecting to none:", p);
	expect(log_from(p, sizeof(text) - 1) == kHelErrFault,
			"helLog from a no-access page: kHelErrFault");
	check(protect(dispatcher, p, kPage, kRW), "ProtectMemory(read/write)");
	show("after restoring read/write:", p);
	expect(log_from(p, sizeof(text) - 1) == kHelErrNone, "helLog works again (line above)");
	// The kernel's read walked the page tables, found nothing, and faulted the page in.
	show("after helLog read it:", p);
	expect(std::memcmp(const_cast<char *>(p), text, sizeof(text)) == 0,
			"the contents survived both changes");
}

void shared_futex(HelHandle memory, volatile char *p) {
	std::printf("4. a futex in memory shared by two universes and two spaces\n");
	auto *here = reinterpret_cast<Shared *>(const_cast<char *>(p) + 2 * kPage);
	std::atomic_ref<int>{here->word}.store(0, std::memory_order_release);

	HelHandle universe = kHelNullHandle, space = kHelNullHandle;
	check(helCreateUniverse(&universe), "helCreateUniverse");
	check(helCreateSpace(&space), "helCreateSpace");
	// The same page of the same memory object, mapped into the new space.
	void *there = nullptr;
	check(helMapMemory(memory, space, nullptr, 2 * kPage, kPage, kRW, &there), "helMapMemory");
	std::printf("   the shared page is at %p here and at %p in the other space\n",
			static_cast<void *>(here), there);
	// All spaces share one host window, so the addresses differ; each space has its own
	// mappings in it, though.
	expect(helFutexWake(&static_cast<Shared *>(there)->word, 1) == kHelErrFault,
			"their address is not mapped in our space: kHelErrFault");

	HelHandle thread = kHelNullHandle;
	check(helCreateThread(universe, space, kHelAbiSystemV, reinterpret_cast<void *>(&other_side),
				  there, 0, &thread),
			"helCreateThread");
	for (int seen; (seen = std::atomic_ref<int>{here->word}.load(std::memory_order_acquire)) == 0;)
		if (HelError e = helFutexWait(&here->word, seen, kHelWaitInfinite);
				e != kHelErrNone && e != kHelErrFutexRace)
			check(e, "helFutexWait");
	std::uintptr_t frame_here = 0;
	check(helPointerPhysical(kHelNullHandle, here, &frame_here), "helPointerPhysical");
	std::printf("   woken; both sides see frame %#lx\n", static_cast<unsigned long>(frame_here));
	expect(here->frame_there == frame_here, "one frame behind both mappings, so one futex");

	check(helCloseDescriptor(kHelThisUniverse, thread), "helCloseDescriptor(thread)");
	check(helCloseDescriptor(kHelThisUniverse, space), "helCloseDescriptor(space)");
	check(helCloseDescriptor(kHelThisUniverse, universe), "helCloseDescriptor(universe)");
}

void main_thread(std::span<const HelHandle>) {
	helsim::Dispatcher dispatcher; // for ProtectMemory, an SQ operation

	HelHandle memory = kHelNullHandle;
	check(helAllocateMemory(4 * kPage, 0, nullptr, &memory), "helAllocateMemory");
	void *mapping = nullptr;
	check(helMapMemory(memory, kHelNullHandle, nullptr, 0, 4 * kPage, kRW, &mapping),
			"helMapMemory");
	auto *p = static_cast<volatile char *>(mapping);

	lazy_memory(p);
	partial_unmap(p);
	protection(dispatcher, p);
	shared_futex(memory, p);

	check(helUnmapMemory(kHelNullHandle, mapping, kPage), "helUnmapMemory(page 0)");
	check(helUnmapMemory(kHelNullHandle, const_cast<char *>(p) + 2 * kPage, 2 * kPage),
			"helUnmapMemory(pages 2-3)");
	check(helCloseDescriptor(kHelThisUniverse, memory), "helCloseDescriptor(memory)");
}

} // namespace

int main() {
	helsim::MachineConfig config;
	config.cpus = 2;
	config.log_sink = [](const helsim::LogRecord &record) {
		std::printf("   helLog [%.*s] %.*s\n", static_cast<int>(record.thread.size()),
				record.thread.data(), static_cast<int>(record.message.size()),
				record.message.data());
	};
	helsim::Machine machine{config};
	machine.spawn("main", main_thread);
	helsim::RunReport report = machine.run();
	bool ok = !failed && !report.stuck && report.leaks.empty();
	std::printf("\n%s\nrun report:\n%s", ok ? "all checks passed" : "SOMETHING FAILED",
			report.to_string().c_str());
	return ok ? 0 : 1;
}
