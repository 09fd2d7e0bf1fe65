// A device file as the POSIX server sees it: an open description whose passthrough lane the
// device's own server (device.cpp) serves. The POSIX server keeps the client end (to hand to
// processes), the status page mapped read-only, and one long-poll on the lane that tells it
// when the device's readiness changed.
#pragma once

#include <memory>

#include <helsim/posix_device.hpp>

#include "file.hpp"
#include "status_page.hpp"

namespace helsim::posix::detail {

class DeviceFile final : public OpenFile {
public:
	DeviceFile(std::shared_ptr<posix::Device> device, int status_flags)
	: OpenFile{status_flags}, device_{std::move(device)} {}

	HelError start_serving(Server &server) override;
	Async<HelError> connect() override;
	protocol::StatReply stat() const override;
	std::optional<std::uint32_t> status() override;
	Async<std::optional<std::uint32_t>> query_status() override;
	// The device server's sequence of the status last read: a device's change is seen in the
	// page before the long-poll's wake-up, and must count as one edge, not two.
	std::uint64_t status_sequence() override { return sequence_; }
	bool pollable() const override { return true; }

protected:
	void released() override;

private:
	Task watch(std::shared_ptr<DeviceFile> self, std::uint64_t sequence);

	std::shared_ptr<posix::Device> device_;
	Server *server_ = nullptr;
	HelHandle lane_ = kHelNullHandle; // the stream's end the device server accepts on (our copy)
	const StatusPage *page_ = nullptr;
	bool use_page_ = false;
	std::uint64_t sequence_ = 0;
	bool released_ = false;
};

} // namespace helsim::posix::detail
