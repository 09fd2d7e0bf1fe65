// managarm_port: code written for Managarm, run on helsim unchanged.
//
// Everything above main() is what a Managarm program looks like: it includes <hel.h> and
// <hel-syscalls.h> by Managarm's names (helsim's compat headers), checks every call with
// HEL_CHECK, and drives the queue by hand the way helix and mlibc do — no helsim header. It
// creates a queue, maps it, supplies the CQ chunks, submits an asynchronous nop and an
// ExchangeMsgs on a stream through the SQ, flushes both with one helDriveQueue, then waits
// for and reads the completions straight from the ring. main() only starts a Machine.
#include <hel-syscalls.h>
#include <hel.h>

#include <stdio.h>
#include <string.h>

#include <helsim/machine.hpp>

namespace {

constexpr unsigned kCqChunks = 2;
constexpr unsigned kSqChunks = 2;
constexpr size_t kChunkSize = 4096;
constexpr size_t kChunkStride = (sizeof(HelChunk) + kChunkSize + 63) & ~size_t{63};

struct Ring {
	HelHandle handle;
	HelQueue *queue;
	char *base;
	int sqProgress = 0;
	int cqProgress = 0;

	HelChunk *chunk(int n) { return reinterpret_cast<HelChunk *>(base + 64 + n * kChunkStride); }

	// Appends an SQ element (header + payload) to the first SQ chunk.
	void push(unsigned opcode, uintptr_t context, const void *payload, size_t length) {
		HelChunk *sq = chunk(__atomic_load_n(&queue->sqFirst, __ATOMIC_ACQUIRE) & 0xFFFF);
		HelElement element{static_cast<unsigned>(length), opcode,
				reinterpret_cast<void *>(context)};
		memcpy(sq->buffer + sqProgress, &element, sizeof(element));
		if (length)
			memcpy(sq->buffer + sqProgress + sizeof(element), payload, length);
		sqProgress += static_cast<int>(sizeof(element) + length);
		__atomic_store_n(&sq->progressFutex, sqProgress, __ATOMIC_RELEASE);
		__atomic_fetch_or(&queue->kernelNotify, kHelKernelNotifySqProgress, __ATOMIC_RELEASE);
	}

	// Waits for the next CQ element in chunk 0 and returns it.
	HelElement *next() {
		for (;;) {
			int progress = __atomic_load_n(&chunk(0)->progressFutex, __ATOMIC_ACQUIRE);
			if ((progress & kHelProgressMask) != cqProgress) {
				auto *element = reinterpret_cast<HelElement *>(chunk(0)->buffer + cqProgress);
				cqProgress += static_cast<int>(sizeof(HelElement) + element->length);
				return element;
			}
			__atomic_fetch_and(&queue->userNotify, ~kHelUserNotifyCqProgress, __ATOMIC_ACQUIRE);
			if ((__atomic_load_n(&chunk(0)->progressFutex, __ATOMIC_ACQUIRE) & kHelProgressMask) ==
					cqProgress)
				HEL_CHECK(helDriveQueue(handle, kHelDriveWait, 0));
		}
	}
};

void managarm_program() {
	Ring ring{};
	HelQueueParameters params{0, kCqChunks, kChunkSize, kSqChunks};
	HEL_CHECK(helCreateQueue(&params, &ring.handle));
	void *window = nullptr;
	size_t size = (64 + (kCqChunks + kSqChunks) * kChunkStride + 4095) & ~size_t{4095};
	HEL_CHECK(helMapMemory(ring.handle, kHelNullHandle, nullptr, 0, size,
			kHelMapProtRead | kHelMapProtWrite, &window));
	ring.base = static_cast<char *>(window);
	ring.queue = reinterpret_cast<HelQueue *>(window);
	// Supply the CQ: chunk 0 first, chunk 1 behind it, then tell the kernel.
	ring.chunk(0)->next = 1 | kHelNextPresent;
	__atomic_store_n(&ring.queue->cqFirst, 0 | kHelNextPresent, __ATOMIC_RELEASE);
	__atomic_fetch_or(&ring.queue->kernelNotify, kHelKernelNotifySupplyCqChunks, __ATOMIC_RELEASE);
	HEL_CHECK(helDriveQueue(ring.handle, 0, 0));

	// Two operations, one flush.
	ring.push(kHelSubmitAsyncNop, 1, nullptr, 0);
	HelHandle lanes[2];
	HEL_CHECK(helCreateStream(&lanes[0], &lanes[1], 0));
	const char text[] = "ported";
	struct {
		HelSqExchangeMsgs header;
		HelAction actions[2];
	} exchange{};
	exchange.header = {lanes[0], 2, 0};
	exchange.actions[0].type = kHelActionSendFromBuffer;
	exchange.actions[0].flags = kHelItemChain;
	exchange.actions[0].buffer = const_cast<char *>(text);
	exchange.actions[0].length = sizeof(text);
	exchange.actions[1].type = kHelActionRecvInline; // the peer's lane answers below
	struct {
		HelSqExchangeMsgs header;
		HelAction actions[2];
	} echo{};
	echo.header = {lanes[1], 2, 0};
	echo.actions[0].type = kHelActionRecvInline;
	echo.actions[0].flags = kHelItemChain;
	echo.actions[1].type = kHelActionSendFromBuffer;
	echo.actions[1].buffer = const_cast<char *>("echo");
	echo.actions[1].length = 5;
	ring.push(kHelSubmitExchangeMsgs, 2, &exchange, sizeof(exchange));
	ring.push(kHelSubmitExchangeMsgs, 3, &echo, sizeof(echo));
	HEL_CHECK(helDriveQueue(ring.handle, 0, 0));

	for (int seen = 0; seen < 3; ++seen) {
		HelElement *element = ring.next();
		auto *result = reinterpret_cast<HelSimpleResult *>(element + 1);
		HEL_CHECK(result->error);
		if (reinterpret_cast<uintptr_t>(element->context) == 1) {
			printf("async nop: %s\n", _helErrorString(result->error));
			continue;
		}
		// Send result (8 bytes) then the inline receive; or the other way round for the echo.
		auto *bytes = reinterpret_cast<char *>(result);
		auto *inline_result = reinterpret_cast<HelInlineResult *>(
				reinterpret_cast<uintptr_t>(element->context) == 2 ? bytes + 8 : bytes);
		HEL_CHECK(inline_result->error);
		printf("exchange %zu received \"%s\"\n", reinterpret_cast<uintptr_t>(element->context),
				inline_result->data);
	}
	HEL_SOFT_CHECK(helCloseDescriptor(kHelThisUniverse, 0)); // logs "No such descriptor"
	HEL_CHECK(helCloseDescriptor(kHelThisUniverse, lanes[0]));
	HEL_CHECK(helCloseDescriptor(kHelThisUniverse, lanes[1]));
	HEL_CHECK(helUnmapMemory(kHelNullHandle, window, size));
	HEL_CHECK(helCloseDescriptor(kHelThisUniverse, ring.handle));
}

} // namespace

int main() {
	helsim::Machine machine;
	machine.spawn("managarm", [](std::span<const HelHandle>) { managarm_program(); });
	auto report = machine.run();
	puts(report.to_string().c_str());
	return report.stuck || report.threads.at(0).outcome != helsim::ThreadOutcome::returned;
}
