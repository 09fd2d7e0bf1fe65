// Simulated devices: host-side models of hardware that a simulated driver reaches the way a
// Managarm driver reaches real hardware. Registers in MMIO windows of simulated physical
// memory (helAccessPhysical), I/O ports (helAccessIo, helEnableIo), interrupt lines
// (helAccessIrq, helHandleIrq, helAcknowledgeIrq) and DMA into physical memory the driver
// hands the device (helPointerPhysical, DMA spaces).
//
// A driver's register accesses reach the device through helsim's accessors
// (helsimMmioRead/helsimMmioWrite, helsimIoRead/helsimIoWrite in <helsim/hel-syscalls.h>),
// because a host process cannot trap plain loads and stores or in/out instructions. Plain
// loads and stores on a mapped MMIO window still read and write the window's memory, which
// the default mmio_read/mmio_write hooks use as the register file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <helsim/hel.h>

namespace helsim {

class Machine;

// What a device occupies. The machine chooses the addresses (as firmware would) and tells
// them in DeviceAddress.
struct DeviceConfig {
	std::string name = "device";
	// Bytes of MMIO register window (rounded up to whole pages); 0 for none.
	std::size_t mmio_size = 0;
	// I/O ports [io_base, io_base + io_count); io_count 0 for none. Port ranges of two devices
	// must not overlap.
	std::uint16_t io_base = 0;
	std::uint16_t io_count = 0;
	// Interrupt lines the device drives; the machine assigns each a GSI.
	unsigned irq_lines = 0;
};

// Where the machine placed a device: what a driver is told, as ACPI or PCI would tell it.
struct DeviceAddress {
	std::uint64_t mmio_physical = 0; // helAccessPhysical(token, mmio_physical, mmio_size, ...)
	std::size_t mmio_size = 0;
	std::uint16_t io_base = 0;
	std::uint16_t io_count = 0;
	std::vector<unsigned> gsis; // helAccessIrq(token, kHelAccessIrqByGsi, 0, gsis[line], ...)
};

namespace detail {
struct DeviceBinding; // src/device_binding.hpp: what plug() connects a device to
}

// Derive from Device and override the hooks the hardware has. Hooks run on the simulated
// thread that made the access (a driver's accessor call) or in interrupt context (a callback
// scheduled with after()), with no kernel lock held; they may call the protected services
// below. A device is plugged into one machine and must outlive it (plug() keeps a
// shared_ptr).
class Device {
public:
	Device();
	Device(const Device &) = delete;
	Device &operator=(const Device &) = delete;
	virtual ~Device();

	// Valid once plugged.
	const DeviceAddress &address() const;

	// A read or write of `width` bytes (1, 2, 4 or 8) at `offset` into the MMIO window.
	// Defaults: the window's memory is the register file.
	virtual std::uint64_t mmio_read(std::uint64_t offset, unsigned width);
	virtual void mmio_write(std::uint64_t offset, unsigned width, std::uint64_t value);
	// A port read or write of `width` bytes (1, 2 or 4). Defaults: reads float high (all
	// ones), writes are ignored.
	virtual std::uint32_t io_read(std::uint16_t port, unsigned width);
	virtual void io_write(std::uint16_t port, unsigned width, std::uint32_t value);
	// The driver acknowledged line `line` (helAcknowledgeIrq with kHelAckAcknowledge or the
	// controller's end of interrupt): a level-triggered device that still needs service
	// asserts the line again here. Default: nothing.
	virtual void irq_acknowledged(unsigned line);

protected:
	// The MMIO window's memory (mmio_size bytes; nullptr without a window).
	std::byte *registers() const;

	// Interrupts. An edge-triggered line: raise_irq sends one edge. A level-triggered line:
	// set_irq_level holds it asserted until the device lowers it.
	void raise_irq(unsigned line);
	void set_irq_level(unsigned line, bool asserted);

	// DMA: copies between the device and simulated physical memory. False (and nothing
	// copied) if [physical, physical + size) is not all inside the machine's physical memory.
	bool dma_read(std::uint64_t physical, void *destination, std::size_t size) const;
	bool dma_write(std::uint64_t physical, const void *source, std::size_t size) const;

	// Runs `callback` in interrupt context once the machine's clock has advanced by
	// `delay_ns` (virtual time in deterministic mode, host time in threads mode): how a
	// device completes work later. Callbacks still pending at teardown are dropped.
	void after(std::uint64_t delay_ns, std::function<void()> callback);
	// The machine's clock (what helGetClock reads), in nanoseconds; 0 before plug().
	std::uint64_t now() const;

private:
	friend DeviceAddress plug(Machine &, std::shared_ptr<Device>, DeviceConfig);
	std::unique_ptr<detail::DeviceBinding> binding_;
};

// Plugs `device` into `machine`: reserves its MMIO window in physical memory, its ports and
// its interrupt lines, and returns where they are. Throws std::invalid_argument for a device
// already plugged, ports that overlap another device's or a width/size the machine cannot
// give, and std::runtime_error if physical memory has no room for the window.
DeviceAddress plug(Machine &machine, std::shared_ptr<Device> device, DeviceConfig config);

} // namespace helsim
