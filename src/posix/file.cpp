#include "file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "server.hpp"

namespace helsim::posix::detail {

using namespace helsim::ipc;
using protocol::FileRequest;
using protocol::Response;

bool Requester::alive() const {
	auto p = process.lock();
	return p && p->alive;
}

Async<std::int64_t> OpenFile::read(const Requester &, std::span<std::byte>, std::int64_t) {
	co_return -EINVAL;
}

Async<std::int64_t> OpenFile::write(const Requester &, std::span<const std::byte>, std::int64_t) {
	co_return -EINVAL;
}

std::int64_t OpenFile::seek(std::int64_t, int) { return -ESPIPE; }

bool OpenFile::readable() const {
	int mode = status_flags_ & O_ACCMODE;
	return mode == O_RDONLY || mode == O_RDWR;
}

bool OpenFile::writable() const {
	int mode = status_flags_ & O_ACCMODE;
	return mode == O_WRONLY || mode == O_RDWR;
}

bool OpenFile::nonblocking() const { return status_flags_ & O_NONBLOCK; }

void OpenFile::drop_reference() {
	if (--fd_references_ > 0)
		return;
	// Pending and later requests on the lane fail; the serving loop ends and closes it.
	helShutdownLane(serving_);
	released();
}

namespace {

// One request on a passthrough lane: Managarm's protocols::fs read/write/seek handlers.
Task handle_file_request(Server &server, std::shared_ptr<OpenFile> file, HelHandle conversation,
		FileRequest request, std::array<char, 16> credentials, Requester who) {
	auto &executor = server.executor();
	Response response;
	std::vector<std::byte> data;
	switch (request.preamble.id) {
	case protocol::kFileRead: {
		data.resize(std::min<std::uint64_t>(request.size, protocol::kMaxTransfer));
		// A read that may block can be cancelled (EINTR): by kFileCancel on this lane, or by
		// kSuperCancel/kCancel when the server forwarded it with the process's credentials.
		CancelToken token;
		CancelRegistry::Scope scope{server.cancels(), {credentials, request.cancel_id}, token};
		who.cancel = &token;
		response.error = co_await file_read(*file, who, data, request.offset);
		std::size_t n = response.error > 0 ? static_cast<std::size_t>(response.error) : 0;
		response.value = static_cast<std::int64_t>(n);
		if (response.error > 0)
			response.error = 0;
		auto sent = co_await executor.exchange(conversation,
				send_buffer(&response, sizeof(response)), send_buffer(data.data(), n));
		auto &[head, payload] = sent.results;
		// The requester could not take the data (it died, or its buffer faulted on a long
		// send): nothing is lost, the next read gets it. A pread took nothing away.
		if (n && request.offset < 0 && (head.error != kHelErrNone || payload.error != kHelErrNone))
			file->unread(std::span{data.data(), n});
		break;
	}
	case protocol::kFileWrite: {
		if (request.size > protocol::kMaxTransfer) {
			response.error = -EINVAL;
		} else {
			data.resize(request.size);
			auto received =
					co_await executor.exchange(conversation, recv_buffer(data.data(), data.size()));
			auto [length] = received.results;
			received.release(); // a write may wait for room: hold no CQ chunk meanwhile
			if (length.error != kHelErrNone) {
				response.error = length.error == kHelErrRemoteFault ? -EFAULT : -EIO;
			} else {
				auto n = co_await file_write(*file, who, std::span{data.data(), length.length},
						request.offset);
				if (n == -EPIPE)
					server.broken_pipe(who);
				response.error = n < 0 ? n : 0;
				response.value = n < 0 ? 0 : n;
			}
		}
		co_await executor.exchange(conversation, send_buffer(&response, sizeof(response)));
		break;
	}
	case protocol::kFileSeek: {
		std::int64_t position = file_seek(*file, request.offset, request.whence);
		response.error = position < 0 ? position : 0;
		response.value = position < 0 ? 0 : position;
		co_await executor.exchange(conversation, send_buffer(&response, sizeof(response)));
		break;
	}
	case protocol::kFileCancel: // Managarm's CancelOperation: no answer
		server.cancel_request(credentials, request.cancel_id);
		break;
	default:
		response.error = -ENOSYS;
		co_await executor.exchange(conversation, send_buffer(&response, sizeof(response)));
	}
	helCloseDescriptor(kHelThisUniverse, conversation);
}

// Accepts requests on the description's lane until it is shut down (its last fd closed),
// detaching a handler for each so that a blocked read does not hold up the next request.
Task serve_passthrough(Server &server, std::shared_ptr<OpenFile> file) {
	auto &executor = server.executor();
	for (;;) {
		auto accepted = co_await executor.exchange(file->serving_lane(),
				accept(recv_inline(), extract_credentials()));
		auto &[conversation, head, credentials] = accepted.results;
		if (conversation.error == kHelErrNoMemory)
			continue; // the request never arrived (its call is -ENOMEM): the lane serves on
		if (conversation.error != kHelErrNone)
			break;
		auto request = protocol::decode<FileRequest>(head.data);
		auto from = credentials.credentials;
		Requester who{server.process_by_credentials(from)};
		accepted.release();
		AtomicCounters::bump(server.state().counters.passthrough_requests);
		executor.spawn(handle_file_request(server, file, conversation.handle, request, from, who));
	}
	helCloseDescriptor(kHelThisUniverse, file->serving_lane());
	helCloseDescriptor(kHelThisUniverse, file->passthrough_lane());
}

} // namespace

HelError OpenFile::start_serving(Server &server) {
	HelHandle a = kHelNullHandle, b = kHelNullHandle;
	if (HelError e = helCreateStream(&a, &b, 0))
		return e;
	serving_ = a;
	passthrough_ = b;
	server.executor().spawn(serve_passthrough(server, shared_from_this()));
	return kHelErrNone;
}

Async<std::int64_t> file_read(OpenFile &file, const Requester &who, std::span<std::byte> buffer,
		std::int64_t offset) {
	if (!file.readable())
		co_return -EBADF;
	if (offset >= 0 && !file.seekable())
		co_return -ESPIPE;
	co_return co_await file.read(who, buffer, offset);
}

Async<std::int64_t> file_write(OpenFile &file, const Requester &who,
		std::span<const std::byte> data, std::int64_t offset) {
	if (!file.writable())
		co_return -EBADF;
	if (offset >= 0 && !file.seekable())
		co_return -ESPIPE;
	co_return co_await file.write(who, data, offset);
}

std::int64_t file_seek(OpenFile &file, std::int64_t offset, int whence) {
	if (whence != SEEK_SET && whence != SEEK_CUR && whence != SEEK_END)
		return -EINVAL;
	return file.seek(offset, whence);
}

} // namespace helsim::posix::detail
