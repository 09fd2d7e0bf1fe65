// hosted: a program written for Managarm, run on helsim by linking helsim::hosted (see
// docs/hosting.md). Nothing here is helsim's: Managarm's headers, its own main(), std::thread,
// and one queue per OS thread in a thread_local, as helix keeps them. main() opens a stream;
// a server thread answers three requests that a client thread sends over it. Each thread's
// queue is created on first use and closed by its thread_local destructor when the thread ends.
//
// Run it as it is (threads mode), or replayable: HELSIM_MODE=deterministic:7 ./hosted;
// HELSIM_REPORT=1 prints the machine's run report at exit.
#include <hel-syscalls.h>
#include <hel.h>

#include <stdio.h>
#include <string.h>

#include <string>
#include <thread>

namespace {

int replies_ok = 0; // written by the client thread, read by main after joining it

// The thread's completion queue: the ring is mapped into the thread's address space and read
// without syscalls; helDriveQueue waits when it is empty.
class Dispatcher {
public:
	Dispatcher() {
		HelQueueParameters params{0, 2, kChunkSize, 2};
		HEL_CHECK(helCreateQueue(&params, &handle_));
		HEL_CHECK(helMapMemory(handle_, kHelNullHandle, nullptr, 0, kMapSize,
				kHelMapProtRead | kHelMapProtWrite, &window_));
		queue_ = static_cast<HelQueue *>(window_);
		chunk(0)->next = 1 | kHelNextPresent;
		__atomic_store_n(&queue_->cqFirst, 0 | kHelNextPresent, __ATOMIC_RELEASE);
		__atomic_fetch_or(&queue_->kernelNotify, kHelKernelNotifySupplyCqChunks, __ATOMIC_RELEASE);
		HEL_CHECK(helDriveQueue(handle_, 0, 0));
	}
	Dispatcher(const Dispatcher &) = delete;
	Dispatcher &operator=(const Dispatcher &) = delete;
	~Dispatcher() {
		HEL_CHECK(helUnmapMemory(kHelNullHandle, window_, kMapSize));
		HEL_CHECK(helCloseDescriptor(kHelThisUniverse, handle_));
	}

	HelHandle handle() const { return handle_; }

	// The next completion (this example stays within the first CQ chunk).
	HelElement *wait() {
		for (;;) {
			int progress = __atomic_load_n(&chunk(0)->progressFutex, __ATOMIC_ACQUIRE);
			if ((progress & kHelProgressMask) != consumed_) {
				auto *element = reinterpret_cast<HelElement *>(chunk(0)->buffer + consumed_);
				consumed_ += static_cast<int>(sizeof(HelElement) + element->length);
				return element;
			}
			__atomic_fetch_and(&queue_->userNotify, ~kHelUserNotifyCqProgress, __ATOMIC_ACQUIRE);
			if ((__atomic_load_n(&chunk(0)->progressFutex, __ATOMIC_ACQUIRE) & kHelProgressMask) ==
					consumed_)
				HEL_CHECK(helDriveQueue(handle_, kHelDriveWait, 0));
		}
	}

private:
	static constexpr size_t kChunkSize = 4096;
	static constexpr size_t kStride = (sizeof(HelChunk) + kChunkSize + 63) & ~size_t{63};
	static constexpr size_t kMapSize = (64 + 4 * kStride + 4095) & ~size_t{4095};

	HelChunk *chunk(int n) {
		return reinterpret_cast<HelChunk *>(static_cast<char *>(window_) + 64 + n * kStride);
	}

	HelHandle handle_ = kHelNullHandle;
	void *window_ = nullptr;
	HelQueue *queue_ = nullptr;
	int consumed_ = 0;
};

// helix's model: one dispatcher per OS thread.
Dispatcher &dispatcher() {
	thread_local Dispatcher instance;
	return instance;
}

// Submits `actions` on `lane` and waits for their completion.
HelElement *exchange(HelHandle lane, HelAction *actions, size_t count) {
	Dispatcher &d = dispatcher();
	HEL_CHECK(helSubmitAsync(lane, actions, count, d.handle(), 0, 0));
	return d.wait();
}

void server(HelHandle lane) {
	for (int n = 0; n < 3; ++n) {
		HelAction recv{};
		recv.type = kHelActionRecvInline;
		auto *request = reinterpret_cast<HelInlineResult *>(exchange(lane, &recv, 1) + 1);
		HEL_CHECK(request->error);
		std::string reply = std::string{"pong for "} + request->data;
		HelAction send{};
		send.type = kHelActionSendFromBuffer;
		send.buffer = reply.data();
		send.length = reply.size() + 1;
		HEL_CHECK(reinterpret_cast<HelSimpleResult *>(exchange(lane, &send, 1) + 1)->error);
	}
}

void client(HelHandle lane) {
	for (int n = 0; n < 3; ++n) {
		std::string request = "ping " + std::to_string(n);
		HelAction actions[2]{};
		actions[0].type = kHelActionSendFromBuffer;
		actions[0].flags = kHelItemChain;
		actions[0].buffer = request.data();
		actions[0].length = request.size() + 1;
		actions[1].type = kHelActionRecvInline;
		auto *results = reinterpret_cast<char *>(exchange(lane, actions, 2) + 1);
		HEL_CHECK(reinterpret_cast<HelSimpleResult *>(results)->error);
		auto *reply = reinterpret_cast<HelInlineResult *>(results + sizeof(HelSimpleResult));
		HEL_CHECK(reply->error);
		printf("client: \"%s\" -> \"%s\"\n", request.c_str(), reply->data);
		replies_ok += "pong for " + request == reply->data;
	}
}

} // namespace

int main() {
	HelHandle lanes[2];
	HEL_CHECK(helCreateStream(&lanes[0], &lanes[1], 0));
	std::thread server_thread{server, lanes[0]};
	std::thread client_thread{client, lanes[1]};
	client_thread.join();
	server_thread.join();
	HEL_CHECK(helCloseDescriptor(kHelThisUniverse, lanes[0]));
	HEL_CHECK(helCloseDescriptor(kHelThisUniverse, lanes[1]));
	printf("%d of 3 replies as expected\n", replies_ok);
	return replies_ok == 3 ? 0 : 1;
}
