// The zero-copy page transfer of examples/page_transfer beside the built-in copy: one
// iteration hands the argument's size of data from a sender to a receiver on one simulated
// thread (both lanes; no context switch), as a producer and a consumer would. The producer
// writes one byte per page first; the consumer reads one byte per page of what it got.
//   pages: sendPages of a memory object + recvPages, the consumer maps the new object (its
//     pages are present: they moved), reads, unmaps and closes it; the producer's next
//     writes fault fresh zero pages in.
//   copy: sendFromBuffer of the producer's mapping + recvToBuffer into the consumer's
//     mapping, both present throughout.
// The host baseline is the copy without a simulator: a memcpy of the same size.
//
// Deterministic mode, so that the wall-clock figure is the simulator's own work and
// sim_ns/iter the virtual time the cost model charges.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

#include <helsim/benchmark.hpp>
#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/ipc.hpp>

#include "page_transfer.hpp"

namespace {

namespace ipc = helsim::ipc;

constexpr std::size_t kPage = 4096;
constexpr std::uint32_t kReadWrite = kHelMapProtRead | kHelMapProtWrite;

char *map(HelHandle memory, std::size_t size) {
	void *p = nullptr;
	if (helMapMemory(memory, kHelNullHandle, nullptr, 0, size, kReadWrite, &p) != kHelErrNone)
		return nullptr;
	return static_cast<char *>(p);
}

// Waits for both completions of an iteration; false on any error. The receive's handle, if
// it wrote one, goes to `handle`.
bool both_done(helsim::Dispatcher &dispatcher, HelHandle &handle) {
	bool ok = true;
	for (int completions = 0; completions < 2; ++completions) {
		std::optional<helsim::Element> element = dispatcher.wait();
		ok &= element && element->error() == kHelErrNone;
		if (ok && element->context() == 2 && element->payload().size() >= sizeof(HelHandleResult))
			handle = element->as<HelHandleResult>().handle;
	}
	return ok;
}

// Reads one byte per page: what a consumer touches at least.
unsigned consume(const char *p, std::size_t size) {
	unsigned sum = 0;
	for (std::size_t at = 0; at < size; at += kPage)
		sum += static_cast<unsigned char>(p[at]);
	return sum;
}

void transfer(benchmark::State &state, bool pages) {
	const auto size = static_cast<std::size_t>(state.range(0));
	helsim::bench::Simulation simulation{state, {.mode = helsim::Mode::deterministic}};
	page_transfer::install(simulation.machine());
	bool wrong = false;
	bool ran = simulation.run([&](helsim::bench::Loop &loop) {
		HelHandle a, b, source, target;
		if (helCreateStream(&a, &b, 0) != kHelErrNone ||
				helAllocateMemory(size, 0, nullptr, &source) != kHelErrNone ||
				helAllocateMemory(size, 0, nullptr, &target) != kHelErrNone) {
			wrong = true;
			return;
		}
		char *produced = map(source, size);
		char *room = map(target, size);
		if (!produced || !room) {
			wrong = true;
			return;
		}
		helsim::Dispatcher dispatcher;
		for (auto _ : loop) {
			for (std::size_t at = 0; at < size; at += kPage)
				produced[at] = 1;
			HelHandle received = kHelNullHandle;
			if (pages) {
				ipc::submit(dispatcher, a, 1, page_transfer::send_pages(source, 0, size));
				ipc::submit(dispatcher, b, 2, page_transfer::recv_pages());
				wrong |= !both_done(dispatcher, received);
				char *view = map(received, size);
				wrong |= !view;
				if (view) {
					benchmark::DoNotOptimize(consume(view, size));
					helUnmapMemory(kHelNullHandle, view, size);
				}
				helCloseDescriptor(kHelThisUniverse, received);
			} else {
				ipc::submit(dispatcher, a, 1, ipc::send_buffer(produced, size));
				ipc::submit(dispatcher, b, 2, ipc::recv_buffer(room, size));
				wrong |= !both_done(dispatcher, received);
				benchmark::DoNotOptimize(consume(room, size));
			}
		}
		helUnmapMemory(kHelNullHandle, produced, size);
		helUnmapMemory(kHelNullHandle, room, size);
		for (HelHandle h : {a, b, source, target})
			helCloseDescriptor(kHelThisUniverse, h);
	});
	if (ran && wrong)
		state.SkipWithError("a transfer failed");
	state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * size));
}

void BM_Ext_PageTransfer(benchmark::State &state) { transfer(state, true); }
BENCHMARK(BM_Ext_PageTransfer)->Arg(4 << 10)->Arg(64 << 10)->Arg(1 << 20);

// The built-in copy of the same size, in the same machine set-up.
void BM_Ext_PageTransfer_SendFromBuffer(benchmark::State &state) { transfer(state, false); }
BENCHMARK(BM_Ext_PageTransfer_SendFromBuffer)->Arg(4 << 10)->Arg(64 << 10)->Arg(1 << 20);

// The host baseline: the producer's byte per page, a memcpy, the consumer's byte per page.
void BM_Ext_PageTransfer_HostMemcpy(benchmark::State &state) {
	const auto size = static_cast<std::size_t>(state.range(0));
	std::vector<char> produced(size), room(size);
	for (auto _ : state) {
		for (std::size_t at = 0; at < size; at += kPage)
			produced[at] = 1;
		std::memcpy(room.data(), produced.data(), size);
		benchmark::DoNotOptimize(consume(room.data(), size));
		benchmark::ClobberMemory();
	}
	state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * size));
}
BENCHMARK(BM_Ext_PageTransfer_HostMemcpy)->Arg(4 << 10)->Arg(64 << 10)->Arg(1 << 20);

} // namespace
