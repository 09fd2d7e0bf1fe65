// Device files for helsim::posix: what a researcher implements to put a file like /dev/ticker
// into the POSIX namespace. Each registered device is served by its own simulated process (an
// "outside file server", as Managarm's drivers are): it answers reads, writes and readiness
// on the passthrough lane of every description opened on it, and publishes each
// description's readiness in a status page (a seqlocked 4 KiB page the POSIX server maps
// read-only) so that poll and epoll need no request per fd (Options::status_page).
// docs/posix-readiness.md describes the design; docs/reference/posix-device.md the calls.
//
//   auto queue = std::make_shared<helsim::posix::QueueDevice>();
//   system.add_device("/dev/queue", queue);
//   ... in a process: int fd = open("/dev/queue", O_RDWR); poll(...); read(fd, ...);
//   ... anywhere on a simulated thread: queue->push("bytes"); // fd becomes readable
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <span>
#include <string_view>

namespace helsim::posix {

namespace detail {
struct DeviceAccess;
}

class Device {
public:
	Device() = default;
	Device(const Device &) = delete;
	Device &operator=(const Device &) = delete;
	virtual ~Device() = default;

	// The hooks run on the device server's thread, one at a time, and must not block.
	// read: the bytes stored into `buffer`, 0 at end of file, or a negative errno (-EAGAIN:
	// nothing to read yet; reads never wait, as if every description were O_NONBLOCK).
	virtual std::int64_t read(std::span<std::byte> buffer) = 0;
	// write: the bytes taken, or a negative errno.
	virtual std::int64_t write(std::span<const std::byte> data) = 0;
	// The poll bits that hold now (POLLIN, POLLOUT, POLLHUP, POLLERR, ...). The server asks
	// after every read and write, and after changed().
	virtual std::uint32_t status() = 0;

	// Tells the device's server that status() may have changed (data arrived from outside).
	// Call it on a simulated thread (a process's, or an attached host thread): it wakes the
	// server with helFutexWake. Elsewhere (the host before machine.run()) it does nothing,
	// which is fine: a server that starts later reads status() afresh.
	void changed();

private:
	friend struct detail::DeviceAccess;
	alignas(4) std::atomic<int> doorbell_{0}; // bumped by changed(); a futex the server waits on
	std::atomic<bool> stopping_{false};       // the server generation is ending
};

// A byte queue: push() from outside makes it readable, read() takes bytes, write() appends
// (a loopback). Always writable.
class QueueDevice : public Device {
public:
	void push(std::string_view bytes);

	std::int64_t read(std::span<std::byte> buffer) override;
	std::int64_t write(std::span<const std::byte> data) override;
	std::uint32_t status() override;

private:
	std::mutex mutex_;
	std::deque<std::byte> bytes_;
};

} // namespace helsim::posix
