// Device files served outside the POSIX server, with their status pages.
//
// Three simulated processes take part (docs/posix-readiness.md#devices):
// - the device server (one per registered device, started at its first open): serves the
//   passthrough lane of every description opened on the device with the Device's hooks, and
//   keeps a status page per description, written under its seqlock;
// - its doorbell: waits on the Device's futex word and tells the device server, over a lane,
//   that Device::changed() was called (a host call on any simulated thread cannot reach a
//   queue in another universe, a futex on host memory can);
// - the POSIX server: hands the descriptions' lanes to processes, maps each status page
//   read-only, and keeps one long-poll (kFilePoll with a sequence) per description that the
//   device server answers when the status changed, so blocked poll/epoll waits wake.
//
// The control lane between the POSIX server and a device server carries one message: open
// (a FileRequest with id 0 and the serving end of the new description's lane pushed); the
// answer is a Response (value: the page's sequence) and the status page (Read and Assign
// rights only).
#include "device.hpp"

#include <poll.h>
#include <sys/stat.h>

#include <cerrno>
#include <climits>
#include <new>
#include <optional>
#include <stdexcept>
#include <vector>

#include <helsim/hel-stubs.h>
#include <helsim/ipc.hpp>
#include <helsim/posix.hpp>

#include "server.hpp"
#include "state.hpp"
#include "tmpfs.hpp"

namespace helsim::posix {

namespace detail {

struct DeviceAccess {
	static std::atomic<int> &doorbell(Device &device) { return device.doorbell_; }
	static std::atomic<bool> &stopping(Device &device) { return device.stopping_; }
};

} // namespace detail

static_assert(sizeof(std::atomic<int>) == sizeof(int));

void Device::changed() {
	doorbell_.fetch_add(1, std::memory_order_release);
	// Not a simulated thread (the host before a run): nobody waits, nothing to wake.
	(void)helFutexWake(reinterpret_cast<int *>(&doorbell_), UINT_MAX);
}

void QueueDevice::push(std::string_view bytes) {
	{
		std::lock_guard lock{mutex_};
		for (char c : bytes)
			bytes_.push_back(static_cast<std::byte>(c));
	}
	changed();
}

std::int64_t QueueDevice::read(std::span<std::byte> buffer) {
	std::lock_guard lock{mutex_};
	if (bytes_.empty())
		return -EAGAIN;
	std::size_t n = std::min(buffer.size(), bytes_.size());
	std::copy_n(bytes_.begin(), n, buffer.begin());
	bytes_.erase(bytes_.begin(), bytes_.begin() + static_cast<std::ptrdiff_t>(n));
	return static_cast<std::int64_t>(n);
}

std::int64_t QueueDevice::write(std::span<const std::byte> data) {
	std::lock_guard lock{mutex_};
	bytes_.insert(bytes_.end(), data.begin(), data.end());
	return static_cast<std::int64_t>(data.size());
}

std::uint32_t QueueDevice::status() {
	std::lock_guard lock{mutex_};
	return (bytes_.empty() ? 0u : static_cast<std::uint32_t>(POLLIN | POLLRDNORM)) | POLLOUT |
			POLLWRNORM;
}

void System::add_device(std::string path, std::shared_ptr<Device> device) {
	if (path.empty() || path.front() != '/')
		throw std::invalid_argument("helsim::posix: a device's path must be absolute: " + path);
	if (!device)
		throw std::invalid_argument("helsim::posix: no device for " + path);
	std::lock_guard lock{state_->mutex};
	if (state_->devices.count(path) || state_->tmpfs->add_device(path, device))
		throw std::invalid_argument("helsim::posix: the path is taken: " + path);
	state_->devices.emplace(path, std::move(device));
}

namespace detail {

using namespace helsim::ipc;
using protocol::FileRequest;
using protocol::Response;

namespace {

constexpr std::size_t kPage = 4096;

// Machine::spawn with `lane` as the thread's one handle, which is closed here either way;
// false if memory ran out for the thread (std::bad_alloc: its object, its stack on the host, or
// the new universe's handle table).
bool spawn_or_fail(Machine &machine, std::string name, Entry entry, HelHandle lane) {
	bool spawned = true;
	try {
		machine.spawn(std::move(name), std::move(entry), {lane});
	} catch (const std::bad_alloc &) {
		spawned = false;
	}
	helCloseDescriptor(kHelThisUniverse, lane);
	return spawned;
}

// A request the device server never saw because the kernel ran out of memory: the pairing
// could not be made (the offer fails), or the server's universe could not take the
// conversation (its accept failed and the conversation ends unanswered).
bool lost_to_memory(HelError offered, HelError reply) {
	return offered == kHelErrNoMemory || (offered == kHelErrNone && reply == kHelErrEndOfLane);
}

// ------------------------------------------------------------------ the device server

struct DeviceOpen {
	explicit DeviceOpen(Executor &executor) : changed{executor} {}
	HelHandle lane = kHelNullHandle;
	StatusPage *page = nullptr;
	std::uint64_t sequence = 1;
	std::uint32_t status = 0;
	bool closed = false;
	Condition changed; // long-polls wait here
};

class DeviceServer {
public:
	DeviceServer(std::shared_ptr<Device> device, HelHandle control, AtomicCounters &counters,
			Executor &executor)
	: device_{std::move(device)}, control_{control}, counters_{counters}, executor_{executor} {}

	// A server that cannot start (the kernel refused its doorbell's stream, or the doorbell
	// its queue) closes its control lane: the open waiting on it fails with -ENOMEM, and the
	// next open starts another server.
	void run(Machine &machine) {
		DeviceAccess::stopping(*device_).store(false);
		HelHandle bell = kHelNullHandle, bell_remote = kHelNullHandle;
		if (helCreateStream(&bell, &bell_remote, 0) != kHelErrNone) {
			helCloseDescriptor(kHelThisUniverse, control_);
			return;
		}
		// The doorbell starts from the count seen now, before any open reads status(): a
		// changed() after this point rings even if it comes before the doorbell runs.
		int seen = DeviceAccess::doorbell(*device_).load(std::memory_order_acquire);
		bool spawned = spawn_or_fail(
				machine, "posix-device-doorbell",
				[device = device_, seen](
						std::span<const HelHandle> handles) { ring(*device, handles[0], seen); },
				bell_remote);
		if (!spawned) {
			helCloseDescriptor(kHelThisUniverse, bell);
			helCloseDescriptor(kHelThisUniverse, control_);
			return;
		}
		executor_.spawn(serve_bell(bell));
		executor_.run();
	}

private:
	// The doorbell process: one message to the device server when it is up, then one per
	// wake of the futex. Numbered steps: (1) wait while the count is `seen`; (2) load the new
	// count into `seen`; (3) ring. The device server re-reads every status after (3), so a
	// changed() before (2) is seen by that refresh, and one after (2) makes (1) return at once.
	static void ring(Device &device, HelHandle lane, int seen) {
		std::optional<Dispatcher> queue;
		try {
			queue.emplace(QueueConfig{4, 2, 4096});
		} catch (const HelException &) { // kHelErrNoMemory: the device server stops
			helCloseDescriptor(kHelThisUniverse, lane);
			return;
		}
		auto &bell = DeviceAccess::doorbell(device);
		auto &stopping = DeviceAccess::stopping(device);
		while (send_ring(*queue, lane) && !stopping.load()) {
			helFutexWait(reinterpret_cast<int *>(&bell), seen, kHelWaitInfinite); // (1)
			if (stopping.load())
				break;
			int now = bell.load(std::memory_order_acquire); // (2)
			while (now == seen) {                           // a spurious wake-up
				helFutexWait(reinterpret_cast<int *>(&bell), seen, kHelWaitInfinite);
				now = bell.load(std::memory_order_acquire);
			}
			seen = now;
		}
		helCloseDescriptor(kHelThisUniverse, lane);
	}

	// (3): false once the device server is gone. A ring the kernel could not deliver (no
	// memory for the conversation, on either side) is sent again: a lost one would leave a
	// blocked poll waiting for a change it was not told of.
	static bool send_ring(Dispatcher &queue, HelHandle lane) {
		char byte = 0;
		for (;;) {
			HelError offered = kHelErrNone, sent = kHelErrNone;
			try {
				auto ring = exchange_sync(queue, lane, offer(send_buffer(&byte, 1)));
				offered = std::get<0>(ring.results).error;
				sent = std::get<1>(ring.results).error;
			} catch (const HelException &e) {
				offered = e.error();
			}
			if (offered == kHelErrNone && sent == kHelErrNone)
				return true;
			if (!lost_to_memory(offered, sent))
				return false;
		}
	}

	// Every event is a new sequence, even with the same bits: new data in a readable device
	// is a new edge for EPOLLET (Linux wakes the file's wait queue on each arrival).
	void publish(DeviceOpen &open) {
		open.status = device_->status();
		++open.sequence;
		write_status(*open.page, open.sequence, open.status);
		open.changed.notify_all();
	}

	void refresh() {
		for (auto &open : opens_)
			publish(*open);
	}

	Task serve_control() {
		for (;;) {
			auto accepted =
					co_await executor_.exchange(control_, accept(recv_inline(), pull_descriptor()));
			auto &[conversation, head, lane] = accepted.results;
			if (conversation.error == kHelErrNoMemory)
				continue; // the request never arrived (its call is -ENOMEM): the lane serves on
			if (conversation.error != kHelErrNone)
				break;
			HelHandle talk = conversation.handle;
			HelHandle serving = lane.error == kHelErrNone ? lane.handle : HelHandle{kHelNullHandle};
			accepted.release();
			Response response;
			HelHandle memory = kHelNullHandle;
			void *window = nullptr;
			// The page's frame now (kHelAllocContinuous): a lazy one that could not be
			// allocated would fault this server at its first write.
			if (!serving ||
					helAllocateMemory(kPage, kHelAllocContinuous, nullptr, &memory) !=
							kHelErrNone ||
					helMapMemory(memory, kHelNullHandle, nullptr, 0, kPage,
							kHelMapProtRead | kHelMapProtWrite, &window) != kHelErrNone) {
				// No page follows: the POSIX server's pull fails and it reads the error.
				response.error = -ENOMEM;
				co_await executor_.exchange(talk, send_buffer(&response, sizeof(response)));
				if (serving)
					helCloseDescriptor(kHelThisUniverse, serving);
			} else {
				auto open = std::make_shared<DeviceOpen>(executor_);
				open->lane = serving;
				open->page = static_cast<StatusPage *>(window);
				open->status = device_->status();
				write_status(*open->page, open->sequence, open->status);
				opens_.push_back(open);
				response.value = static_cast<std::int64_t>(open->sequence);
				co_await executor_.exchange(talk, send_buffer(&response, sizeof(response)),
						push_descriptor(memory, kHelRightRead | kHelRightAssign));
				executor_.spawn(serve_file(open));
			}
			if (memory)
				helCloseDescriptor(kHelThisUniverse, memory);
			helCloseDescriptor(kHelThisUniverse, talk);
		}
		// The POSIX server ended: so does the doorbell (and then serve_bell).
		DeviceAccess::stopping(*device_).store(true);
		device_->changed();
		helCloseDescriptor(kHelThisUniverse, control_);
	}

	// The doorbell's first ring says it is up: only then are opens served (a doorbell that
	// could not start ends the server).
	Task serve_bell(HelHandle bell) {
		bool up = false;
		for (;;) {
			auto accepted = co_await executor_.exchange(bell, accept(recv_inline()));
			auto &[conversation, head] = accepted.results;
			if (conversation.error == kHelErrNoMemory)
				continue; // the ring never arrived: the doorbell rings again
			if (conversation.error != kHelErrNone)
				break;
			helCloseDescriptor(kHelThisUniverse, conversation.handle);
			accepted.release();
			if (!std::exchange(up, true))
				executor_.spawn(serve_control());
			refresh();
		}
		if (!up)
			helCloseDescriptor(kHelThisUniverse, control_);
		helCloseDescriptor(kHelThisUniverse, bell);
	}

	Task serve_file(std::shared_ptr<DeviceOpen> open) {
		for (;;) {
			auto accepted = co_await executor_.exchange(open->lane,
					accept(recv_inline(), extract_credentials()));
			auto &[conversation, head, credentials] = accepted.results;
			if (conversation.error == kHelErrNoMemory)
				continue; // the request never arrived (its call is -ENOMEM): the lane serves on
			if (conversation.error != kHelErrNone)
				break;
			auto request = protocol::decode<FileRequest>(head.data);
			HelHandle talk = conversation.handle;
			accepted.release();
			AtomicCounters::bump(counters_.passthrough_requests);
			executor_.spawn(handle(open, talk, request));
		}
		// The last fd closed: long-polls answer, the page goes.
		open->closed = true;
		open->changed.notify_all();
		std::erase(opens_, open);
		helUnmapMemory(kHelNullHandle, open->page, kPage);
		helCloseDescriptor(kHelThisUniverse, open->lane);
	}

	Task handle(std::shared_ptr<DeviceOpen> open, HelHandle talk, FileRequest request) {
		Response response;
		std::vector<std::byte> data;
		switch (request.preamble.id) {
		case protocol::kFileRead: {
			data.resize(std::min<std::uint64_t>(request.size, protocol::kMaxTransfer));
			std::int64_t n = device_->read(data);
			std::size_t sent = n > 0 ? static_cast<std::size_t>(n) : 0;
			response.error = n < 0 ? n : 0;
			response.value = static_cast<std::int64_t>(sent);
			refresh();
			co_await executor_.exchange(talk, send_buffer(&response, sizeof(response)),
					send_buffer(data.data(), sent));
			break;
		}
		case protocol::kFileWrite: {
			data.resize(std::min<std::uint64_t>(request.size, protocol::kMaxTransfer));
			auto received =
					co_await executor_.exchange(talk, recv_buffer(data.data(), data.size()));
			auto [length] = received.results;
			received.release();
			if (length.error != kHelErrNone) {
				response.error = -EFAULT;
			} else {
				std::int64_t n = device_->write(std::span{data.data(), length.length});
				response.error = n < 0 ? n : 0;
				response.value = n < 0 ? 0 : n;
				refresh();
			}
			co_await executor_.exchange(talk, send_buffer(&response, sizeof(response)));
			break;
		}
		case protocol::kFilePoll:
			// offset < 0: the status now (status_page off); else: answer once the sequence
			// passed `offset` (the POSIX server's long-poll) or the description closed.
			while (request.offset >= 0 && !open->closed &&
					open->sequence <= static_cast<std::uint64_t>(request.offset))
				co_await open->changed.wait();
			response.value = open->status;
			response.value2 = static_cast<std::int64_t>(open->sequence);
			response.error = open->closed ? -EBADF : 0;
			co_await executor_.exchange(talk, send_buffer(&response, sizeof(response)));
			break;
		default:
			response.error = request.preamble.id == protocol::kFileSeek ? -ESPIPE : -ENOSYS;
			co_await executor_.exchange(talk, send_buffer(&response, sizeof(response)));
		}
		helCloseDescriptor(kHelThisUniverse, talk);
	}

	std::shared_ptr<Device> device_;
	HelHandle control_;
	AtomicCounters &counters_; // the System's: it outlives the machine's run
	Executor &executor_;
	std::vector<std::shared_ptr<DeviceOpen>> opens_;
};

} // namespace

// ------------------------------------------------------------------ the POSIX server's side

struct Server::DeviceLinks {
	std::map<const Device *, HelHandle> control;
	~DeviceLinks() {
		for (auto &[device, lane] : control)
			helCloseDescriptor(kHelThisUniverse, lane); // the device server stops
	}
};

// A null handle if the device's server could not be started (no stream for its control lane).
HelHandle Server::device_control(const std::shared_ptr<Device> &device) {
	if (!device_links_)
		device_links_ = std::make_shared<DeviceLinks>();
	auto &lane = device_links_->control[device.get()];
	if (lane)
		return lane;
	HelHandle remote = kHelNullHandle;
	if (helCreateStream(&lane, &remote, 0) != kHelErrNone) {
		device_links_->control.erase(device.get());
		return kHelNullHandle;
	}
	bool spawned = spawn_or_fail(
			state_.machine, "posix-device",
			[device, &machine = state_.machine, &counters = state_.counters](
					std::span<const HelHandle> handles) {
				std::optional<Executor> executor;
				try {
					executor.emplace();
				} catch (const HelException &) {                      // its queue: kHelErrNoMemory
					helCloseDescriptor(kHelThisUniverse, handles[0]); // the open fails
					return;
				}
				DeviceServer{device, handles[0], counters, *executor}.run(machine);
			},
			remote);
	if (!spawned) {
		helCloseDescriptor(kHelThisUniverse, lane);
		device_links_->control.erase(device.get());
		return kHelNullHandle;
	}
	return lane;
}

void Server::device_ended(const std::shared_ptr<Device> &device, HelHandle control) {
	auto it = device_links_->control.find(device.get());
	if (it == device_links_->control.end() || it->second != control)
		return; // another open saw the end first
	helCloseDescriptor(kHelThisUniverse, control);
	device_links_->control.erase(it);
}

HelError DeviceFile::start_serving(Server &server) {
	server_ = &server;
	use_page_ = server.state().options.status_page;
	HelHandle serving = kHelNullHandle, passthrough = kHelNullHandle;
	if (HelError e = helCreateStream(&serving, &passthrough, 0))
		return e;
	lane_ = serving;
	set_lanes(serving, passthrough);
	return kHelErrNone;
}

// Hands the serving end to the device's server, which answers with the status page. Any
// failure is the kernel's refusal somewhere on the way (a device server that could not start
// closed its control lane: the next open starts another).
Async<HelError> DeviceFile::connect() {
	HelHandle control = server_->device_control(device_);
	if (!control)
		co_return kHelErrNoMemory;
	FileRequest open{};
	auto answer = co_await server_->executor().exchange(control,
			offer(send_buffer(&open, sizeof(open)), push_descriptor(lane_), recv_inline(),
					pull_descriptor()));
	auto &[offered, head, pushed, reply, memory] = answer.results;
	if (offered.error == kHelErrEndOfLane)
		server_->device_ended(device_, control);
	Response response = offered.error || head.error || pushed.error || reply.error
			? Response{-ENOMEM, 0, 0}
			: protocol::decode<Response>(reply.data);
	bool ok = !response.error;
	HelHandle page = memory.error == kHelErrNone ? memory.handle : HelHandle{kHelNullHandle};
	answer.release();
	void *window = nullptr;
	if (ok && use_page_)
		ok = page &&
				helMapMemory(page, kHelNullHandle, nullptr, 0, kPage, kHelMapProtRead, &window) ==
						kHelErrNone;
	if (page)
		helCloseDescriptor(kHelThisUniverse, page);
	if (!ok)
		co_return kHelErrNoMemory;
	page_ = static_cast<const StatusPage *>(window);
	server_->executor().spawn(watch(std::static_pointer_cast<DeviceFile>(shared_from_this()),
			static_cast<std::uint64_t>(response.value)));
	co_return kHelErrNone;
}

// The long-poll: the device server answers once the description's sequence passed the one
// the POSIX server knows; then every poll and epoll_wait watching it checks again.
Task DeviceFile::watch(std::shared_ptr<DeviceFile> self, std::uint64_t sequence) {
	auto &executor = server_->executor();
	while (!released_) {
		FileRequest poll{};
		poll.preamble.id = protocol::kFilePoll;
		poll.offset = static_cast<std::int64_t>(sequence);
		auto answer = co_await executor.exchange(passthrough_lane(),
				offer(send_buffer(&poll, sizeof(poll)), imbue_credentials(), recv_inline()));
		auto &[offered, head, imbued, reply] = answer.results;
		if (lost_to_memory(offered.error, reply.error))
			continue; // the device server never saw it: ask again
		if (offered.error || reply.error)
			break;
		auto response = protocol::decode<Response>(reply.data);
		if (response.error)
			break;
		sequence = static_cast<std::uint64_t>(response.value2);
		answer.release();
		watchers().changed();
	}
	(void)self;
}

std::optional<std::uint32_t> DeviceFile::status() {
	if (!use_page_ || !page_)
		return std::nullopt;
	auto read = read_status(*page_);
	if (!read)
		return std::nullopt; // the device server is writing: ask it (as Managarm)
	AtomicCounters::bump(server_->state().counters.status_page_reads);
	sequence_ = read->sequence;
	return read->status;
}

Async<std::optional<std::uint32_t>> DeviceFile::query_status() {
	if (auto bits = status())
		co_return *bits;
	if (released_)
		co_return POLLNVAL;
	AtomicCounters::bump(server_->state().counters.device_poll_requests);
	FileRequest poll{};
	poll.preamble.id = protocol::kFilePoll;
	poll.offset = -1;
	auto answer = co_await server_->executor().exchange(passthrough_lane(),
			offer(send_buffer(&poll, sizeof(poll)), imbue_credentials(), recv_inline()));
	auto &[offered, head, imbued, reply] = answer.results;
	if (lost_to_memory(offered.error, reply.error))
		co_return std::nullopt; // the poll is -ENOMEM
	if (offered.error || reply.error)
		co_return POLLERR;
	auto response = protocol::decode<Response>(reply.data);
	sequence_ = static_cast<std::uint64_t>(response.value2);
	co_return static_cast<std::uint32_t>(response.value);
}

protocol::StatReply DeviceFile::stat() const {
	protocol::StatReply reply{};
	reply.mode = S_IFCHR | 0666;
	reply.nlink = 1;
	return reply;
}

// drop_reference shut the lane down (the device server drops the description and answers
// the long-poll); the handles go now.
void DeviceFile::released() {
	released_ = true;
	if (page_)
		helUnmapMemory(kHelNullHandle, const_cast<StatusPage *>(page_), kPage);
	page_ = nullptr;
	helCloseDescriptor(kHelThisUniverse, lane_);
	helCloseDescriptor(kHelThisUniverse, passthrough_lane());
}

} // namespace detail

} // namespace helsim::posix
