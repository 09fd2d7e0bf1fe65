// copy_on_write: anonymous memory and fork the way a POSIX server on Managarm builds them.
//
// The "parent" thread gets its heap as copy-on-write memory over kHelZeroMemory (what an
// anonymous mmap is), writes to it, and forks it with the SQ ForkMemory operation, as
// Process::fork does for every private mapping. It then writes to its heap again and starts a
// "child" process (its own universe and address space) that maps the forked view. The child
// sees the heap as it was at the fork, writes its own data, and reports back through a page
// both map; the parent sees none of the child's writes. Physical addresses show which pages
// are still shared and which were copied.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>

#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace {

constexpr std::size_t kPage = 4096;
constexpr std::size_t kHeapSize = 4 * kPage;

// The heap's layout, in both processes.
struct Heap {
	int counter;
	char text[64];
};
constexpr std::size_t kUntouchedPage = 2; // written by nobody: the zero frame throughout

// The page the child reports through (shared memory, not copy-on-write).
struct Report {
	int done; // futex word: 1 once the child has filled in the rest
	int counter_at_fork;
	int counter_after_write;
	char text_at_fork[64];
	std::uintptr_t frame_before_write;
	std::uintptr_t frame_after_write;
};

helsim::Machine *machine;
bool failed = false;

void check(HelError e, const char *what) {
	if (e != kHelErrNone) {
		std::printf("%s failed with HelError %d\n", what, e);
		char message[] = "copy_on_write: a hel call failed";
		helPanic(message, sizeof(message) - 1);
	}
}

void expect(bool ok, const char *what) {
	std::printf("  %s %s\n", ok ? "ok:    " : "FAILED:", what);
	failed |= !ok;
}

void *map(HelHandle memory, std::size_t size) {
	void *p = nullptr;
	check(helMapMemory(memory, kHelNullHandle, nullptr, 0, size, kHelMapProtRead | kHelMapProtWrite,
				  &p),
			"helMapMemory");
	return p;
}

std::uintptr_t frame_of(const void *p) {
	std::uintptr_t physical = 0;
	check(helPointerPhysical(kHelNullHandle, p, &physical), "helPointerPhysical");
	return physical;
}

void child_main(std::span<const HelHandle> handles) {
	auto *heap = static_cast<Heap *>(map(handles[0], kHeapSize));
	auto *report = static_cast<Report *>(map(handles[1], kPage));
	report->counter_at_fork = heap->counter;
	std::memcpy(report->text_at_fork, heap->text, sizeof(heap->text));
	report->frame_before_write = frame_of(heap);
	heap->counter += 1; // the first write copies the page
	std::strcpy(heap->text, "the child's own heap");
	report->counter_after_write = heap->counter;
	report->frame_after_write = frame_of(heap);
	std::atomic_ref<int>{report->done}.store(1, std::memory_order_release);
	check(helFutexWake(&report->done, 1), "helFutexWake");
}

void parent_main(std::span<const HelHandle>) {
	helsim::Dispatcher dispatcher;

	// mmap(MAP_PRIVATE | MAP_ANONYMOUS): copy-on-write over zero memory.
	HelHandle heap_memory = kHelNullHandle;
	check(helCopyOnWrite(kHelZeroMemory, 0, kHeapSize, &heap_memory), "helCopyOnWrite");
	auto *heap = static_cast<Heap *>(map(heap_memory, kHeapSize));
	auto *untouched = static_cast<char *>(static_cast<void *>(heap)) + kUntouchedPage * kPage;
	std::uintptr_t zero_frame = frame_of(untouched);
	heap->counter = 41;
	std::strcpy(heap->text, "written before the fork");
	std::uintptr_t parent_frame = frame_of(heap);
	std::printf("parent: heap page 0 in frame %#lx, the unwritten page 2 in the zero frame %#lx\n",
			static_cast<unsigned long>(parent_frame), static_cast<unsigned long>(zero_frame));

	// fork(): ForkMemory, then the child maps the new view in its own space.
	dispatcher.submit(kHelSubmitForkMemory, 1, HelSqForkMemory{heap_memory});
	dispatcher.flush();
	auto forked = dispatcher.wait_for(1, [](helsim::Element &&) {});
	auto result = forked.as<HelHandleResult>();
	check(result.error, "ForkMemory");
	HelHandle child_heap = result.handle;
	std::printf("parent: forked the heap\n");

	// The parent writes after the fork; the child must not see it.
	heap->counter = 100;
	std::strcpy(heap->text, "written by the parent after the fork");
	std::printf("parent: page 0 moved from frame %#lx to %#lx (copied on write)\n",
			static_cast<unsigned long>(parent_frame), static_cast<unsigned long>(frame_of(heap)));

	HelHandle report_memory = kHelNullHandle;
	check(helAllocateMemory(kPage, 0, nullptr, &report_memory), "helAllocateMemory");
	auto *report = static_cast<Report *>(map(report_memory, kPage));
	machine->spawn("child", child_main, {child_heap, report_memory});
	for (int seen;
			(seen = std::atomic_ref<int>{report->done}.load(std::memory_order_acquire)) == 0;)
		if (HelError e = helFutexWait(&report->done, seen, kHelWaitInfinite);
				e != kHelErrNone && e != kHelErrFutexRace)
			check(e, "helFutexWait");

	std::printf("child:  saw counter %d and \"%s\" in frame %#lx\n", report->counter_at_fork,
			report->text_at_fork, static_cast<unsigned long>(report->frame_before_write));
	std::printf("child:  wrote counter %d; its page 0 is now frame %#lx\n",
			report->counter_after_write, static_cast<unsigned long>(report->frame_after_write));
	std::printf("parent: still has counter %d and \"%s\"\n", heap->counter, heap->text);

	std::printf("checks:\n");
	expect(report->counter_at_fork == 41, "the child sees the heap as it was at the fork");
	expect(std::strcmp(report->text_at_fork, "written before the fork") == 0, "including the text");
	expect(report->frame_before_write == parent_frame,
			"until it writes, the child shares the frame the parent froze at the fork");
	expect(report->frame_after_write != parent_frame && report->frame_after_write != frame_of(heap),
			"the child's write gave it a private frame");
	expect(heap->counter == 100, "the parent keeps its own writes");
	expect(frame_of(untouched) == zero_frame, "a page nobody wrote is still the zero frame");
}

} // namespace

int main() {
	helsim::MachineConfig config;
	config.cpus = 2;
	helsim::Machine m{config};
	machine = &m;
	m.spawn("parent", parent_main);
	helsim::RunReport report = m.run();
	bool ok = !failed && !report.stuck && report.leaks.empty();
	std::printf("\n%s\nrun report:\n%s", ok ? "all checks passed" : "SOMETHING FAILED",
			report.to_string().c_str());
	return ok ? 0 : 1;
}
