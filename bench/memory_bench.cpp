// Memory benchmarks: mapping, faults and the kernel's checked copy, next to the host
// operations they stand for. docs/benchmarks.md has the command, the figures and the goals.
//
// Every helsim case runs on the benchmark thread attached to a one-CPU machine. Direct
// accesses to simulated memory go through the host fault handler (sim/host_faults.hpp) the
// first time a page is touched, which is what the fault cases measure.
#include <benchmark/benchmark.h>

#include <sys/mman.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include <helsim/hel.h>
#include <helsim/machine.hpp>

#include "kernel/memory/space.hpp"
#include "kernel/memory/usercopy.hpp"
#include "kernel/threads/thread.hpp"

namespace {

constexpr std::size_t kPage = 4096;
constexpr std::uint32_t kRW = kHelMapProtRead | kHelMapProtWrite;

helsim::MachineConfig one_cpu(std::size_t memory = std::size_t{256} << 20) {
	helsim::MachineConfig config;
	config.cpus = 1;
	config.physical_memory = memory;
	return config;
}

bool ok(benchmark::State &state, HelError e, const char *what) {
	if (e == kHelErrNone)
		return true;
	state.SkipWithError(what);
	return false;
}

// ---------------------------------------------------------------- mappings

// helMapMemory + helUnmapMemory of one 4 KiB page, with one direct write in between when
// `touch` is set.
void map_unmap(benchmark::State &state, bool touch) {
	helsim::Machine machine{one_cpu()};
	auto attached = machine.attach();
	HelHandle memory;
	if (!ok(state, helAllocateMemory(kPage, 0, nullptr, &memory), "helAllocateMemory"))
		return;
	for (auto _ : state) {
		void *p = nullptr;
		if (helMapMemory(memory, kHelNullHandle, nullptr, 0, kPage, kRW, &p) != kHelErrNone)
			return (void)state.SkipWithError("map failed");
		if (touch)
			static_cast<volatile char *>(p)[0] = 1;
		if (helUnmapMemory(kHelNullHandle, p, kPage) != kHelErrNone)
			return (void)state.SkipWithError("unmap failed");
	}
}

// A page never touched: mapping and page-table bookkeeping only, no host call.
void BM_Mem_MapUnmap(benchmark::State &state) { map_unmap(state, false); }
BENCHMARK(BM_Mem_MapUnmap);

// With the write: the host fault, the simulated fault (demand zero on the first round, a
// present page later), the host mirror and its removal.
void BM_Mem_MapTouchUnmap(benchmark::State &state) { map_unmap(state, true); }
BENCHMARK(BM_Mem_MapTouchUnmap);

// The host baseline: an anonymous page mapped, touched and unmapped.
void BM_Host_MmapTouchMunmap(benchmark::State &state) {
	for (auto _ : state) {
		void *p = mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return (void)state.SkipWithError("mmap failed");
		static_cast<volatile char *>(p)[0] = 1;
		munmap(p, kPage);
	}
}
BENCHMARK(BM_Host_MmapTouchMunmap);

// ---------------------------------------------------------------- faults

// Times one iteration's access alone (manual time): setting up a fresh area between
// iterations is not part of it, and PauseTiming() would cost more than a kernel fault.
class Stopwatch {
public:
	explicit Stopwatch(benchmark::State &state) : state_{state} {}
	~Stopwatch() {
		std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start_;
		state_.SetIterationTime(elapsed.count());
	}

private:
	benchmark::State &state_;
	std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// Small enough that the untimed set-up of a fresh area (and, for copy-on-write, reading every
// page of it) stays short next to the timed faults.
constexpr std::size_t kFaultArea = std::size_t{1} << 20;

// A write to a page never touched before, by user code (arg 0: host fault, simulated fault,
// zeroed frame, host mirror) or by the kernel (arg 1: a syscall writing its result there,
// page-table walk and simulated fault only). Each round uses a fresh memory object so
// every fault allocates.
void BM_Mem_FaultDemandZero(benchmark::State &state) {
	helsim::Machine machine{one_cpu()};
	auto attached = machine.attach();
	bool by_kernel = state.range(0) == 1;
	HelHandle memory = kHelNullHandle;
	auto fresh = [&] {
		if (memory != kHelNullHandle)
			helCloseDescriptor(kHelThisUniverse, memory);
		return helAllocateMemory(kFaultArea, 0, nullptr, &memory) == kHelErrNone;
	};
	void *base = nullptr;
	std::size_t next = kFaultArea;
	for (auto _ : state) {
		if (next == kFaultArea) {
			if (base)
				helUnmapMemory(kHelNullHandle, base, kFaultArea);
			if (!fresh() ||
					helMapMemory(memory, kHelNullHandle, nullptr, 0, kFaultArea, kRW, &base) !=
							kHelErrNone)
				return (void)state.SkipWithError("allocate/map failed");
			next = 0;
		}
		char *page = static_cast<char *>(base) + next;
		Stopwatch watch{state};
		if (by_kernel) {
			if (helDescriptorInfo(memory, reinterpret_cast<HelDescriptorInfo *>(page)) !=
					kHelErrNone)
				return (void)state.SkipWithError("kernel write failed");
		} else {
			*reinterpret_cast<volatile char *>(page) = 1;
		}
		next += kPage;
	}
	state.SetLabel(by_kernel ? "kernel access" : "user access");
}
BENCHMARK(BM_Mem_FaultDemandZero)->Arg(0)->Arg(1)->UseManualTime();

// A write to a page of a copy-on-write view of zero memory that was read before: the read
// mapped the shared zero page read-only, the write copies it.
void BM_Mem_CowFault(benchmark::State &state) {
	helsim::Machine machine{one_cpu()};
	auto attached = machine.attach();
	HelHandle memory = kHelNullHandle;
	void *base = nullptr;
	std::size_t next = kFaultArea;
	for (auto _ : state) {
		if (next == kFaultArea) {
			if (base)
				helUnmapMemory(kHelNullHandle, base, kFaultArea);
			if (memory != kHelNullHandle)
				helCloseDescriptor(kHelThisUniverse, memory);
			if (!ok(state, helCopyOnWrite(kHelZeroMemory, 0, kFaultArea, &memory),
						"helCopyOnWrite") ||
					!ok(state,
							helMapMemory(memory, kHelNullHandle, nullptr, 0, kFaultArea, kRW,
									&base),
							"helMapMemory"))
				return;
			// Read every page first, so that the timed writes are copy-on-write faults.
			for (std::size_t at = 0; at < kFaultArea; at += kPage)
				if (static_cast<volatile char *>(base)[at] != 0)
					return (void)state.SkipWithError("zero memory is not zero");
			next = 0;
		}
		Stopwatch watch{state};
		static_cast<volatile char *>(base)[next] = 1;
		next += kPage;
	}
}
BENCHMARK(BM_Mem_CowFault)->UseManualTime();

// ---------------------------------------------------------------- the checked copy

// The kernel's copy out of user memory (kernel::copy_user, what every syscall and IPC copy
// uses): arg 0 = bytes; arg 1 = 0 for memory mapped in the caller's space (page-table walk
// per page), 1 for plain host memory in the default mode (the fault-safe copy).
void BM_Mem_UserCopy(benchmark::State &state) {
	helsim::Machine machine{one_cpu()};
	auto attached = machine.attach();
	auto bytes = static_cast<std::size_t>(state.range(0));
	bool host = state.range(1) == 1;
	std::size_t area = (bytes + kPage - 1) & ~(kPage - 1);
	std::vector<char> host_buffer(area, 'h');
	std::vector<char> kernel_buffer(area);
	void *source = host_buffer.data();
	if (!host) {
		HelHandle memory;
		if (!ok(state, helAllocateMemory(area, 0, nullptr, &memory), "helAllocateMemory") ||
				!ok(state, helMapMemory(memory, kHelNullHandle, nullptr, 0, area, kRW, &source),
						"helMapMemory"))
			return;
		std::memset(source, 's', area); // faults every page in
	}
	auto &space = helsim::kernel::Thread::current()->space();
	for (auto _ : state) {
		std::size_t done = 0;
		HelError e = helsim::kernel::copy_user(space, reinterpret_cast<std::uintptr_t>(source),
				kernel_buffer.data(), bytes, false, done, nullptr);
		if (e != kHelErrNone)
			return (void)state.SkipWithError("copy failed");
		benchmark::ClobberMemory();
	}
	state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
	state.SetLabel(host ? "host memory" : "mapped memory");
}
BENCHMARK(BM_Mem_UserCopy)->ArgsProduct({{64, 4096, 65536}, {0, 1}});

// The baseline for the checked copy: plain memcpy of the same sizes. 64 KiB and 1 MiB are also
// the anchors of BM_Ipc_Send's long sends, which copy from buffer to buffer when they pair.
void BM_Host_Memcpy(benchmark::State &state) {
	auto bytes = static_cast<std::size_t>(state.range(0));
	std::vector<char> source(bytes, 's'), target(bytes);
	for (auto _ : state) {
		std::memcpy(target.data(), source.data(), bytes);
		benchmark::ClobberMemory();
	}
	state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
}
BENCHMARK(BM_Host_Memcpy)->Arg(64)->Arg(4096)->Arg(65536)->Arg(1 << 20);

} // namespace
