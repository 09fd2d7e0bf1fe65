// IRQ benchmarks: how long from a device raising its line (helsim::raise_gsi) to the driver's
// await completing and its helAcknowledgeIrq, on one CPU and across CPUs. The host baselines
// are in the same binary: BM_Host_Eventfd_SameThread (event_bench.cpp) and
// BM_Host_EventfdPingPong (ipc_bench.cpp).
//
// Round trip: a device fiber raises the line and awaits a bitset event "done"; the driver
// fiber awaits the IRQ object, acknowledges the sequence it got, and raises "done". One
// iteration is raise -> driver wake -> acknowledge -> device wake. The benchmark loop runs in
// the device fiber; wall-clock time (UseRealTime), as in ipc_bench.cpp.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <span>
#include <stdexcept>

#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/irq.hpp>
#include <helsim/machine.hpp>

#include "bench_support.hpp"

namespace {

using helsim::bench::await;
using helsim::bench::check;
using helsim::bench::pin;

constexpr std::int64_t kWarmup = 64;
constexpr unsigned kGsi = 3;

void raise_to_ack(benchmark::State &state, unsigned cpus, int device_cpu, int driver_cpu) {
	helsim::MachineConfig config;
	config.cpus = cpus;
	helsim::Machine machine{config};
	HelHandle token = machine.hardware_access_token();
	HelHandle done;
	{
		auto host = machine.attach();
		check(helCreateBitsetEvent(&done), "helCreateBitsetEvent");
	}
	const std::int64_t rounds = kWarmup + static_cast<std::int64_t>(state.max_iterations);
	machine.spawn("driver",
			[&](std::span<const HelHandle> h) {
				if (driver_cpu >= 0)
					pin(driver_cpu);
				HelHandle pin_handle, irq;
				check(helAccessIrq(h[0], kHelAccessIrqByGsi, 0, kGsi, &pin_handle), "helAccessIrq");
				check(helConfigureIrq(pin_handle, kHelIrqTriggerEdge, kHelIrqPolarityHigh),
						"helConfigureIrq");
				check(helHandleIrq(pin_handle, &irq), "helHandleIrq");
				check(helsimRaiseBitsetEvent(h[1], 1), "ready");
				helsim::Dispatcher d;
				std::uint64_t seen = 0;
				for (std::int64_t i = 0; i < rounds; ++i) {
					seen = await(d, irq, seen);
					check(helAcknowledgeIrq(irq, kHelAckAcknowledge, seen), "helAcknowledgeIrq");
					check(helsimRaiseBitsetEvent(h[1], 1), "done");
				}
			},
			{token, done});
	machine.spawn("device",
			[&](std::span<const HelHandle> h) {
				if (device_cpu >= 0)
					pin(device_cpu);
				helsim::Dispatcher d;
				std::uint64_t seen = await(d, h[0], 1); // the driver is ready
				auto round = [&] {
					helsim::raise_gsi(machine, kGsi);
					seen = await(d, h[0], seen);
				};
				for (std::int64_t i = 0; i < kWarmup; ++i)
					round();
				for (auto _ : state)
					round();
			},
			{done});
	{
		auto host = machine.attach();
		check(helCloseDescriptor(kHelThisUniverse, done), "close");
	}
	auto report = machine.run();
	if (report.stuck || report.operations_pending())
		state.SkipWithError("the machine got stuck");
	state.SetItemsProcessed(state.iterations()); // IRQs handled per second
}

// Device and driver on the one CPU: each hand-off is a simulated context switch.
void BM_Irq_RaiseToAck_SameCpu(benchmark::State &state) { raise_to_ack(state, 1, -1, -1); }
BENCHMARK(BM_Irq_RaiseToAck_SameCpu)->UseRealTime();

// Device on CPU 1, driver on CPU 0: every raise wakes a fiber on the other host thread.
void BM_Irq_RaiseToAck_CrossCpu(benchmark::State &state) { raise_to_ack(state, 2, 1, 0); }
BENCHMARK(BM_Irq_RaiseToAck_CrossCpu)->UseRealTime();

// One fiber: submit an await, raise the line, reap the completion, acknowledge. The kernel's
// own path (controller, sink, completion ring), no switch.
void BM_Irq_RaiseAwaitAck_SameThread(benchmark::State &state) {
	helsim::Machine machine;
	HelHandle token = machine.hardware_access_token();
	machine.spawn("driver",
			[&](std::span<const HelHandle> h) {
				HelHandle pin_handle, irq;
				check(helAccessIrq(h[0], kHelAccessIrqByGsi, 0, kGsi, &pin_handle), "helAccessIrq");
				check(helHandleIrq(pin_handle, &irq), "helHandleIrq");
				helsim::Dispatcher d;
				std::uint64_t seen = 0;
				for (auto _ : state) {
					d.submit(kHelSubmitAwaitEvent, 1, HelSqAwaitEvent{irq, seen, 0});
					d.flush();
					helsim::raise_gsi(machine, kGsi);
					seen = d.wait()->as<HelEventResult>().sequence;
					check(helAcknowledgeIrq(irq, kHelAckAcknowledge, seen), "helAcknowledgeIrq");
				}
			},
			{token});
	machine.run();
	state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Irq_RaiseAwaitAck_SameThread)->UseRealTime();

} // namespace
