// driver: a user-space driver serving a simulated block device, the way a Managarm driver
// serves real hardware, and a client that talks to the driver over a stream.
//
// The device (a helsim::Device) has 64 sectors of 512 bytes, a page of MMIO registers and one
// edge-triggered interrupt line. The driver
//   - maps the registers with helAccessPhysical (gated by the hardware access token),
//   - takes its interrupt with helAccessIrq + helHandleIrq,
//   - gives the device a physically contiguous DMA buffer (helAllocateMemory with
//     kHelAllocContinuous, helPointerPhysical),
//   - starts each transfer with MMIO register writes (helsimMmioWrite: a host process cannot
//     trap plain stores, so register writes that must reach the device go through the
//     accessor), then awaits the interrupt on its queue (kHelSubmitAwaitEvent on the IRQ
//     object) and acknowledges it with the sequence the await returned.
// The device completes a transfer 20 µs of machine time after the doorbell (Device::after),
// copies between its storage and the DMA buffer (Device::dma_read/dma_write) and raises the
// line. The client writes a sector, reads it back, reads a sector never written, and reads
// past the end of the disk (the device reports an error, the driver passes it on).
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <helsim/device.hpp>
#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/ipc.hpp>
#include <helsim/machine.hpp>

namespace ipc = helsim::ipc;

namespace {

constexpr std::size_t kSectorSize = 512;
constexpr std::uint64_t kSectors = 64;

// The device's register file (byte offsets into the MMIO window).
enum Register : std::uint64_t {
	kCommand = 0x00,    // write: a Command starts a transfer (the doorbell)
	kSector = 0x08,     // the sector to transfer
	kDmaAddress = 0x10, // physical address of a kSectorSize buffer
	kStatus = 0x18,     // read: a Status
	kCapacity = 0x20,   // read: the number of sectors
};
enum Command : std::uint64_t { kRead = 1, kWrite = 2 };
enum Status : std::uint64_t { kIdle = 0, kBusy = 1, kDone = 2, kError = 3 };

class BlockDevice final : public helsim::Device {
public:
	BlockDevice() : storage_(kSectors * kSectorSize) {}

	// Once plugged (the register file exists from then on).
	void init_registers() { set(kCapacity, kSectors); }

	void mmio_write(std::uint64_t offset, unsigned width, std::uint64_t value) override {
		Device::mmio_write(offset, width, value); // the window's memory is the register file
		if (offset == kCommand)
			start(value);
	}

private:
	std::uint64_t reg(Register r) const {
		std::uint64_t value;
		std::memcpy(&value, registers() + r, sizeof(value));
		return value;
	}
	void set(Register r, std::uint64_t value) {
		std::memcpy(registers() + r, &value, sizeof(value));
	}

	void start(std::uint64_t command) {
		std::uint64_t sector = reg(kSector), dma = reg(kDmaAddress);
		set(kStatus, kBusy);
		after(20'000, [this, command, sector, dma] {
			bool ok = sector < kSectors && (command == kRead || command == kWrite);
			if (ok) {
				std::byte *data = storage_.data() + sector * kSectorSize;
				ok = command == kRead ? dma_write(dma, data, kSectorSize)
									  : dma_read(dma, data, kSectorSize);
			}
			set(kStatus, ok ? kDone : kError);
			raise_irq(0);
		});
	}

	std::vector<std::byte> storage_;
};

// The stream protocol between client and driver.
struct Request {
	std::uint32_t op = 0; // kRead, kWrite, or 0 to stop the driver
	std::uint32_t sector = 0;
	std::array<std::byte, kSectorSize> data{};
};
struct Reply {
	std::int32_t status = 0; // 0, or -1 if the device reported an error
	std::array<std::byte, kSectorSize> data{};
};

void check(HelError e, const char *what) {
	if (e != kHelErrNone)
		throw helsim::HelException{what, e};
}

class Driver {
public:
	Driver(HelHandle token, const helsim::DeviceAddress &device) {
		HelHandle mmio;
		check(helAccessPhysical(token, device.mmio_physical, device.mmio_size, kHelCachingMmio,
					  &mmio),
				"helAccessPhysical");
		check(helMapMemory(mmio, kHelNullHandle, nullptr, 0, device.mmio_size,
					  kHelMapProtRead | kHelMapProtWrite, &registers_),
				"helMapMemory (registers)");
		check(helCloseDescriptor(kHelThisUniverse, mmio), "helCloseDescriptor");

		HelHandle pin;
		check(helAccessIrq(token, kHelAccessIrqByGsi, 0, device.gsis[0], &pin), "helAccessIrq");
		check(helConfigureIrq(pin, kHelIrqTriggerEdge, kHelIrqPolarityHigh), "helConfigureIrq");
		check(helHandleIrq(pin, &irq_), "helHandleIrq");
		check(helCloseDescriptor(kHelThisUniverse, pin), "helCloseDescriptor");

		HelHandle memory;
		check(helAllocateMemory(4096, kHelAllocContinuous, nullptr, &memory), "helAllocateMemory");
		check(helMapMemory(memory, kHelNullHandle, nullptr, 0, 4096,
					  kHelMapProtRead | kHelMapProtWrite, &buffer_),
				"helMapMemory (DMA buffer)");
		check(helCloseDescriptor(kHelThisUniverse, memory), "helCloseDescriptor");
		check(helPointerPhysical(kHelNullHandle, buffer_, &buffer_physical_), "helPointerPhysical");

		std::uint64_t capacity = 0;
		check(helsimMmioRead(reg(kCapacity), 8, &capacity), "helsimMmioRead");
		std::printf("driver: %llu sectors; registers at %p, DMA buffer at physical %#llx\n",
				static_cast<unsigned long long>(capacity), registers_,
				static_cast<unsigned long long>(buffer_physical_));
	}

	// One transfer between the DMA buffer and `sector`; false if the device reported an error.
	bool transfer(Command command, std::uint32_t sector) {
		check(helsimMmioWrite(reg(kSector), 8, sector), "helsimMmioWrite");
		check(helsimMmioWrite(reg(kDmaAddress), 8, buffer_physical_), "helsimMmioWrite");
		check(helsimMmioWrite(reg(kCommand), 8, command), "helsimMmioWrite"); // the doorbell

		dispatcher_.submit(kHelSubmitAwaitEvent, 0, HelSqAwaitEvent{irq_, irq_sequence_, 0});
		dispatcher_.flush();
		auto element = dispatcher_.wait();
		auto result = element->as<HelEventResult>();
		check(result.error, "await IRQ");
		irq_sequence_ = result.sequence;
		check(helAcknowledgeIrq(irq_, kHelAckAcknowledge, irq_sequence_), "helAcknowledgeIrq");
		++interrupts_;

		std::uint64_t status = 0;
		check(helsimMmioRead(reg(kStatus), 8, &status), "helsimMmioRead");
		return status == kDone;
	}

	void serve(HelHandle lane) {
		for (;;) {
			Request request;
			auto in = ipc::exchange_sync(dispatcher_, lane,
					ipc::accept(ipc::recv_buffer(&request, sizeof(request))));
			auto &[conversation, received] = in.results;
			check(conversation.error, "accept");
			check(received.error, "receive request");
			Reply reply;
			if (request.op != 0) {
				if (request.op == kWrite)
					std::memcpy(buffer_, request.data.data(), kSectorSize);
				bool ok = transfer(static_cast<Command>(request.op), request.sector);
				reply.status = ok ? 0 : -1;
				if (ok && request.op == kRead)
					std::memcpy(reply.data.data(), buffer_, kSectorSize);
			}
			auto out = ipc::exchange_sync(dispatcher_, conversation.handle,
					ipc::send_buffer(&reply, sizeof(reply)));
			check(std::get<0>(out.results).error, "send reply");
			helCloseDescriptor(kHelThisUniverse, conversation.handle);
			if (request.op == 0)
				break;
		}
		std::printf("driver: %d interrupts served\n", interrupts_);
	}

	~Driver() {
		helUnmapMemory(kHelNullHandle, buffer_, 4096);
		helCloseDescriptor(kHelThisUniverse, irq_);
	}

private:
	void *reg(Register r) const { return static_cast<std::byte *>(registers_) + r; }

	helsim::Dispatcher dispatcher_;
	void *registers_ = nullptr;
	void *buffer_ = nullptr;
	std::uintptr_t buffer_physical_ = 0;
	HelHandle irq_ = kHelNullHandle;
	std::uint64_t irq_sequence_ = 0;
	int interrupts_ = 0;
};

Reply call(helsim::Dispatcher &dispatcher, HelHandle lane, const Request &request) {
	Reply reply;
	auto result = ipc::exchange_sync(dispatcher, lane,
			ipc::offer(ipc::send_buffer(&request, sizeof(request)),
					ipc::recv_buffer(&reply, sizeof(reply))));
	auto &[offered, sent, received] = result.results;
	check(offered.error, "offer");
	check(sent.error, "send request");
	check(received.error, "receive reply");
	return reply;
}

bool client(HelHandle lane) {
	helsim::Dispatcher dispatcher;
	Request write{kWrite, 3, {}};
	for (std::size_t i = 0; i < kSectorSize; ++i)
		write.data[i] = static_cast<std::byte>(i * 7 + 1);
	bool ok = call(dispatcher, lane, write).status == 0;

	Reply back = call(dispatcher, lane, Request{kRead, 3, {}});
	bool same = back.status == 0 && back.data == write.data;
	std::printf("client: sector 3 written and read back: %s\n", same ? "same data" : "DIFFERENT");

	Reply blank = call(dispatcher, lane, Request{kRead, 5, {}});
	bool zero = blank.status == 0 && blank.data == std::array<std::byte, kSectorSize>{};
	std::printf("client: sector 5 (never written) reads as zeros: %s\n", zero ? "yes" : "NO");

	Reply past = call(dispatcher, lane, Request{kRead, 1000, {}});
	std::printf("client: sector 1000 (past the end): status %d\n", past.status);

	call(dispatcher, lane, Request{}); // stops the driver
	return ok && same && zero && past.status == -1;
}

} // namespace

int main() {
	helsim::Machine machine; // threads mode, 2 CPUs; HELSIM_MODE=deterministic:<seed> works too
	auto device = std::make_shared<BlockDevice>();
	helsim::DeviceConfig config;
	config.name = "sim-blk";
	config.mmio_size = 4096;
	config.irq_lines = 1;
	helsim::DeviceAddress address = helsim::plug(machine, device, config);
	device->init_registers();

	HelHandle driver_lane, client_lane;
	{
		auto host = machine.attach();
		check(helCreateStream(&driver_lane, &client_lane, 0), "helCreateStream");
	}
	bool ok = false;
	machine.spawn("driver",
			[address](std::span<const HelHandle> h) {
				Driver driver{h[0], address};
				driver.serve(h[1]);
			},
			{machine.hardware_access_token(), driver_lane});
	machine.spawn("client", [&](std::span<const HelHandle> h) { ok = client(h[0]); },
			{client_lane});
	{
		auto host = machine.attach();
		helCloseDescriptor(kHelThisUniverse, driver_lane);
		helCloseDescriptor(kHelThisUniverse, client_lane);
	}
	helsim::RunReport report = machine.run();
	ok = ok && !report.stuck && report.leaks.empty() && report.operations_pending() == 0;
	if (!ok)
		std::printf("%s", report.to_string().c_str());
	std::printf("%s\n",
			ok ? "every transfer completed; nothing pending, nothing leaked" : "FAILED");
	return ok ? 0 : 1;
}
