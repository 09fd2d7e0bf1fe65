// kernlet: interrupts answered in the kernel, without waking the driver for each one.
//
// A simulated "sensor" device posts readings: each one increments its COUNT register and sends
// an edge on its interrupt line. The driver never awaits or acknowledges the IRQ. It binds a
// kernlet (a host function registered with helsim::register_kernlet, where Managarm would
// upload a compiled kernlet) to the device's registers and a bitset event, and attaches it to
// the IRQ with helAutomateIrq. At IRQ time the kernlet reads COUNT, raises a bit of the event
// for it (and the "done" bit with the last reading) and acknowledges the interrupt, all in the
// kernel. The driver wakes only on the bitset event, which merges the readings that arrive
// while it is busy, so it never wakes more often than interrupts arrive, and often less.
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <span>

#include <helsim/device.hpp>
#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/irq.hpp>
#include <helsim/kernlet.hpp>
#include <helsim/machine.hpp>

namespace {

constexpr std::uint64_t kCount = 0; // readings posted so far (32 bits, read-only)
constexpr std::uint32_t kDone = 1u << 31;
constexpr std::uint32_t kReadings = 64;

class Sensor final : public helsim::Device {
public:
	// Posts a reading every 2 µs of machine time.
	void start() {
		after(2000, [this] { post(); });
	}

private:
	void post() {
		auto *count = reinterpret_cast<std::uint32_t *>(registers() + kCount);
		std::uint32_t n = __atomic_add_fetch(count, 1, __ATOMIC_RELEASE);
		raise_irq(0);
		if (n < kReadings)
			after(2000, [this] { post(); });
	}
};

// Parameters: (0) the register window, (1) the offset of COUNT, (2) the bitset event. The
// device has its line to itself, so every interrupt is its own: the kernlet acknowledges
// each (a kernlet on a shared line would nack the ones its device did not send).
helsim::KernletResult sensor_kernlet(helsim::KernletContext &k) {
	auto count = k.read<std::uint32_t>(0, k.offset(1));
	k.trigger_bitset(2, (1u << (count % 8)) | (count >= kReadings ? kDone : 0));
	return helsim::KernletResult::acknowledged;
}

void check(HelError e, const char *what) {
	if (e != kHelErrNone)
		throw helsim::HelException{what, e};
}

struct Outcome {
	int wakeups = 0;
	std::uint32_t bits_seen = 0;
	std::uint64_t count = 0;
};

void driver(HelHandle token, HelHandle kernlet, const helsim::DeviceAddress &where,
		const std::function<void()> &start_device, Outcome &out) {
	HelHandle registers, pin, irq, event, bound;
	check(helAccessPhysical(token, where.mmio_physical, where.mmio_size, kHelCachingMmio,
				  &registers),
			"helAccessPhysical");
	check(helAccessIrq(token, kHelAccessIrqByGsi, 0, where.gsis[0], &pin), "helAccessIrq");
	check(helConfigureIrq(pin, kHelIrqTriggerEdge, kHelIrqPolarityHigh), "helConfigureIrq");
	check(helHandleIrq(pin, &irq), "helHandleIrq");
	check(helCreateBitsetEvent(&event), "helCreateBitsetEvent");

	HelKernletData data[3];
	data[0].handle = registers;
	data[1].handle = static_cast<HelHandle>(kCount);
	data[2].handle = event;
	check(helBindKernlet(kernlet, data, 3, &bound), "helBindKernlet");
	check(helAutomateIrq(irq, 0, bound), "helAutomateIrq");
	start_device(); // only now: an interrupt nobody answers would stall the line

	helsim::Dispatcher dispatcher;
	std::uint64_t sequence = 1; // a new bitset event is at sequence 1
	for (bool done = false; !done;) {
		dispatcher.submit(kHelSubmitAwaitEvent, 0, HelSqAwaitEvent{event, sequence, 0});
		dispatcher.flush();
		auto result = dispatcher.wait()->as<HelEventResult>();
		check(result.error, "await the event");
		sequence = result.sequence;
		++out.wakeups;
		out.bits_seen |= result.bitset & ~kDone;
		done = result.bitset & kDone;
	}
	void *window = nullptr;
	check(helMapMemory(registers, kHelNullHandle, nullptr, 0, where.mmio_size, kHelMapProtRead,
				  &window),
			"helMapMemory");
	check(helsimMmioRead(window, 4, &out.count), "helsimMmioRead");
	check(helUnmapMemory(kHelNullHandle, window, where.mmio_size), "helUnmapMemory");
	for (HelHandle h : {bound, event, irq, pin, registers, kernlet})
		check(helCloseDescriptor(kHelThisUniverse, h), "helCloseDescriptor");
}

} // namespace

int main() {
	helsim::Machine machine; // threads mode; HELSIM_MODE=deterministic:<seed> replays a run
	auto sensor = std::make_shared<Sensor>();
	auto where =
			helsim::plug(machine, sensor, {.name = "sensor", .mmio_size = 4096, .irq_lines = 1});
	HelHandle kernlet = helsim::register_kernlet(machine, "sensor",
			{helsim::KernletParameter::memory_view, helsim::KernletParameter::offset,
					helsim::KernletParameter::bitset_event},
			sensor_kernlet);
	Outcome outcome;
	machine.spawn("driver",
			[&](std::span<const HelHandle> h) {
				driver(
						h[0], h[1], where, [&] { sensor->start(); }, outcome);
			},
			{machine.hardware_access_token(), kernlet});
	auto report = machine.run();
	auto line = helsim::irq_line_state(machine, where.gsis[0]);
	std::printf("%llu readings, %llu interrupts served in the kernel, %d driver wake-ups\n",
			static_cast<unsigned long long>(outcome.count),
			static_cast<unsigned long long>(line.services), outcome.wakeups);
	bool ok = outcome.count == kReadings && outcome.bits_seen != 0 &&
			outcome.wakeups <= static_cast<int>(line.services) && !line.in_service &&
			!report.stuck && report.leaks.empty() && report.operations_pending() == 0;
	if (!ok)
		std::printf("%s", report.to_string().c_str());
	std::printf("%s\n", ok ? "the driver never acknowledged an interrupt" : "FAILED");
	return ok ? 0 : 1;
}
