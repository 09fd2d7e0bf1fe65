// Tests of the hel queue (src/kernel/queue.cpp): creation, mapping, the raw CQ/SQ ring
// protocol of hel-reference.md section 4a, backpressure, submission errors, many producers,
// and helDriveQueue / helAlertQueue waiting.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include <helsim/dispatcher.hpp>
#include <helsim/extension.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace {

constexpr std::size_t kPage = 4096;

helsim::MachineConfig config(unsigned cpus, std::size_t memory = std::size_t{64} << 20) {
	helsim::MachineConfig c;
	c.cpus = cpus;
	c.physical_memory = memory;
	return c;
}

std::size_t stride_for(std::size_t chunk_size) { return (8 + chunk_size + 63) & ~std::size_t{63}; }

std::size_t size_for(unsigned ncq, unsigned nsq, std::size_t chunk_size) {
	return (64 + (ncq + nsq) * stride_for(chunk_size) + kPage - 1) & ~(kPage - 1);
}

int load(const int *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
void store(int *p, int v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

// Machine::run() from a host thread that is not attached: with no fiber alive it returns at
// once with the current counters, so an attached test can read them mid-test.
helsim::Counters counters_now(helsim::Machine &machine) {
	helsim::RunReport report;
	std::thread t{[&] { report = machine.run(); }};
	t.join();
	return report.counters;
}

void expect_clean(const helsim::RunReport &report) {
	EXPECT_FALSE(report.stuck) << report.to_string();
	for (const auto &t : report.threads)
		EXPECT_EQ(t.outcome, helsim::ThreadOutcome::returned) << t.name << ": " << t.message;
	EXPECT_EQ(report.operations_pending(), 0u) << report.to_string();
	EXPECT_TRUE(report.leaks.empty()) << report.to_string();
}

HelError create(uint32_t flags, unsigned ncq, std::size_t cs, unsigned nsq, HelHandle *h) {
	HelQueueParameters params{flags, ncq, cs, nsq};
	return helCreateQueue(&params, h);
}

constexpr uint32_t kRW = kHelMapProtRead | kHelMapProtWrite;

HelError map(HelHandle h, std::size_t size, std::uintptr_t offset = 0, uint32_t flags = kRW,
		void **out = nullptr, void *hint = nullptr) {
	void *scratch;
	return helMapMemory(h, kHelNullHandle, hint, offset, size, flags, out ? out : &scratch);
}

// A queue created and mapped by hand, without helsim::Dispatcher.
struct RawQueue {
	HelHandle handle = kHelNullHandle;
	HelQueue *q = nullptr;
	unsigned ncq = 0, nsq = 0;
	std::size_t chunk_size = 0;

	RawQueue(unsigned cq, unsigned sq, std::size_t cs) : ncq{cq}, nsq{sq}, chunk_size{cs} {
		HelQueueParameters params{0, ncq, chunk_size, nsq};
		EXPECT_EQ(helCreateQueue(&params, &handle), kHelErrNone);
		void *p = nullptr;
		EXPECT_EQ(map(handle, size(), 0, kRW, &p), kHelErrNone);
		q = static_cast<HelQueue *>(p);
	}
	~RawQueue() {
		EXPECT_EQ(helUnmapMemory(kHelNullHandle, q, size()), kHelErrNone);
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, handle), kHelErrNone);
	}
	std::size_t size() const { return size_for(ncq, nsq, chunk_size); }
	HelChunk *chunk(unsigned i) const {
		return reinterpret_cast<HelChunk *>(
				reinterpret_cast<char *>(q) + 64 + i * stride_for(chunk_size));
	}
	// What helix does at setup: cqFirst = 0, chunks 1..n-1 linked behind it.
	void supply_all_cq() {
		for (unsigned i = 0; i < ncq; ++i) {
			chunk(i)->next = 0;
			chunk(i)->progressFutex = 0;
		}
		store(&q->cqFirst, 0 | kHelNextPresent);
		for (unsigned i = 1; i < ncq; ++i)
			store(&chunk(i - 1)->next, static_cast<int>(i) | kHelNextPresent);
		__atomic_fetch_or(&q->kernelNotify, kHelKernelNotifySupplyCqChunks, __ATOMIC_RELEASE);
		EXPECT_EQ(helDriveQueue(handle, 0, 0), kHelErrNone);
	}
	// Hands a chunk back: reset it and link it behind `tail`.
	void recycle(unsigned index, unsigned tail) {
		store(&chunk(index)->next, 0);
		store(&chunk(index)->progressFutex, 0);
		store(&chunk(tail)->next, static_cast<int>(index) | kHelNextPresent);
		__atomic_fetch_or(&q->kernelNotify, kHelKernelNotifySupplyCqChunks, __ATOMIC_RELEASE);
		EXPECT_EQ(helDriveQueue(handle, 0, 0), kHelErrNone);
	}
	// Writes one SQ element at `offset` of SQ chunk `index` and publishes the new progress.
	std::size_t put_sq(unsigned index, std::size_t offset, unsigned opcode, std::uintptr_t ctx,
			const void *payload = nullptr, unsigned length = 0) {
		HelElement e{length, opcode, reinterpret_cast<void *>(ctx)};
		std::memcpy(chunk(index)->buffer + offset, &e, sizeof(e));
		if (length)
			std::memcpy(chunk(index)->buffer + offset + sizeof(e), payload, length);
		offset += sizeof(e) + length;
		store(&chunk(index)->progressFutex, static_cast<int>(offset));
		return offset;
	}
	void kick_sq() {
		__atomic_fetch_or(&q->kernelNotify, kHelKernelNotifySqProgress, __ATOMIC_RELEASE);
		EXPECT_EQ(helDriveQueue(handle, 0, 0), kHelErrNone);
	}
};

struct Seen {
	unsigned length, opcode;
	std::uintptr_t context;
	HelSimpleResult result;
};

// Every element of a CQ chunk up to its published progress.
std::vector<Seen> read_chunk(const HelChunk *c) {
	std::vector<Seen> out;
	std::size_t progress = static_cast<std::size_t>(load(&c->progressFutex) & kHelProgressMask);
	for (std::size_t at = 0; at < progress;) {
		HelElement e;
		std::memcpy(&e, c->buffer + at, sizeof(e));
		Seen s{e.length, e.opcode, reinterpret_cast<std::uintptr_t>(e.context), {}};
		std::memcpy(&s.result, c->buffer + at + sizeof(e), std::min<std::size_t>(e.length, 8));
		out.push_back(s);
		at += sizeof(e) + e.length;
	}
	return out;
}

void append(std::vector<std::uintptr_t> &to, const HelChunk *c) {
	for (const Seen &s : read_chunk(c))
		to.push_back(s.context);
}

std::vector<std::uintptr_t> contexts(const HelChunk *c) {
	std::vector<std::uintptr_t> out;
	append(out, c);
	return out;
}

std::vector<std::uintptr_t> iota(std::uintptr_t n) {
	std::vector<std::uintptr_t> v(n);
	for (std::uintptr_t i = 0; i < n; ++i)
		v[i] = i;
	return v;
}

} // namespace

// ---------------------------------------------------------------- helCreateQueue

TEST(QueueCreate, RejectsIllegalParametersAndBadPointers) {
	helsim::Machine machine;
	auto a = machine.attach();
	HelHandle h;
	EXPECT_EQ(create(1, 2, 64, 2, &h), kHelErrIllegalArgs) << "flags must be 0";
	EXPECT_EQ(create(0x80000000u, 2, 64, 2, &h), kHelErrIllegalArgs);
	EXPECT_EQ(create(0, 0, 64, 2, &h), kHelErrIllegalArgs) << "numChunks < 2";
	EXPECT_EQ(create(0, 1, 64, 2, &h), kHelErrIllegalArgs) << "numChunks < 2";
	EXPECT_EQ(create(0, 2, 64, 1, &h), kHelErrIllegalArgs) << "numSqChunks == 1";
	EXPECT_EQ(create(0, 2, 68, 2, &h), kHelErrIllegalArgs) << "chunkSize not a multiple of 8";
	EXPECT_EQ(create(0, 2, 4097, 2, &h), kHelErrIllegalArgs);
	EXPECT_EQ(create(0, 2, 0, 2, &h), kHelErrIllegalArgs) << "chunkSize 0";
	EXPECT_EQ(create(0, 2, 16, 2, &h), kHelErrIllegalArgs) << "no room for element + result";
	EXPECT_EQ(create(0, 2, 0x1000000, 0, &h), kHelErrIllegalArgs) << "chunkSize > 0xFFFFFF";
	EXPECT_EQ(create(0, 2, std::size_t{1} << 40, 0, &h), kHelErrIllegalArgs);
	EXPECT_EQ(helCreateQueue(nullptr, &h), kHelErrFault);
	EXPECT_EQ(helCreateQueue(reinterpret_cast<const HelQueueParameters *>(16), &h), kHelErrFault);
}

TEST(QueueCreate, AcceptsBoundaryParameters) {
	helsim::Machine machine{config(2, 16 << 20)};
	auto a = machine.attach();
	HelHandle h = kHelNullHandle;
	// The smallest chunk that holds a HelElement plus a HelSimpleResult.
	EXPECT_EQ(create(0, 2, sizeof(HelElement) + sizeof(HelSimpleResult), 2, &h), kHelErrNone);
	EXPECT_NE(h, kHelNullHandle);
	HelDescriptorInfo info{};
	ASSERT_EQ(helDescriptorInfo(h, &info), kHelErrNone);
	EXPECT_EQ(info.type, kHelDescQueue);
	EXPECT_FALSE(info.rights & kHelRightExecute);
	EXPECT_EQ(create(0, 2, 64, 0, &h), kHelErrNone) << "a queue without SQ";
	// The largest multiple of 8 that fits the progress mask passes validation and only lacks
	// memory (two such chunks need 32 MiB of the 16), unlike 0x1000000 (IllegalArgs above).
	EXPECT_EQ(create(0, 2, 0xFFFFF8, 0, &h), kHelErrNoMemory);
}

TEST(QueueCreate, ExhaustingPhysicalMemoryGivesNoMemoryAndClosingReclaims) {
	helsim::Machine machine{config(1, 64 << 10)};
	auto a = machine.attach();
	HelHandle h;
	// One queue larger than the whole machine.
	EXPECT_EQ(create(0, 32, 4096, 0, &h), kHelErrNoMemory);
	std::vector<HelHandle> queues;
	HelError e = kHelErrNone;
	for (int i = 0; i < 64 && e == kHelErrNone; ++i) {
		e = create(0, 2, 4088, 0, &h); // 64 + 2 * 4096 bytes -> 3 pages
		if (e == kHelErrNone)
			queues.push_back(h);
	}
	EXPECT_EQ(e, kHelErrNoMemory);
	ASSERT_FALSE(queues.empty());
	EXPECT_LE(queues.size() * 3 * kPage, std::size_t{64} << 10);
	EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, queues.back()), kHelErrNone);
	EXPECT_EQ(create(0, 2, 4088, 0, &h), kHelErrNone) << "closing the last handle frees memory";
}

// ---------------------------------------------------------------- helMapMemory of a queue

TEST(QueueMap, SizeMustCoverHeaderAndChunksRoundedToAPage) {
	helsim::Machine machine;
	auto a = machine.attach();
	HelHandle h;
	// R = roundup64(8 + 4088) = 4096; 64 + 2 * 4096 spills into a third page.
	ASSERT_EQ(create(0, 2, 4088, 0, &h), kHelErrNone);
	void *p = nullptr, *q = nullptr;
	ASSERT_EQ(map(h, 3 * kPage, 0, kRW, &p), kHelErrNone);
	char *last = static_cast<char *>(p) + 64 + 2 * 4096 - 1; // last byte of chunk 1
	*last = 42;
	EXPECT_EQ(map(h, 4 * kPage), kHelErrBufferTooSmall);
	EXPECT_EQ(map(h, 3 * kPage, kPage), kHelErrBufferTooSmall);
	EXPECT_EQ(map(h, kPage, 4 * kPage), kHelErrBufferTooSmall);
	// A window inside the queue is fine.
	ASSERT_EQ(map(h, kPage, 2 * kPage, kRW, &q), kHelErrNone);
	EXPECT_EQ(*(static_cast<char *>(q) + (64 + 2 * 4096 - 1 - 2 * kPage)), 42);
}

TEST(QueueMap, MisalignedIsIllegalArgsAndExecuteIsBadRights) {
	helsim::Machine machine;
	auto a = machine.attach();
	HelHandle h;
	ASSERT_EQ(create(0, 2, 4088, 0, &h), kHelErrNone);
	EXPECT_EQ(map(h, 100), kHelErrIllegalArgs);
	EXPECT_EQ(map(h, 0), kHelErrIllegalArgs);
	EXPECT_EQ(map(h, kPage, 8), kHelErrIllegalArgs);
	EXPECT_EQ(map(h, kPage, 0, kRW, nullptr, reinterpret_cast<void *>(0x10000010)),
			kHelErrIllegalArgs);
	// Queues lack kHelRightExecute.
	EXPECT_EQ(map(h, kPage, 0, kHelMapProtRead | kHelMapProtExecute), kHelErrBadRights);
	EXPECT_EQ(map(h, kPage, 0, kHelMapProtRead), kHelErrNone);
}

TEST(QueueMap, TwoMappingsShowTheSameBytesAndUnmapThenRemapWorks) {
	helsim::Machine machine;
	auto a = machine.attach();
	HelHandle h;
	ASSERT_EQ(create(0, 2, 64, 2, &h), kHelErrNone);
	const std::size_t size = size_for(2, 2, 64);
	void *p1 = nullptr, *p2 = nullptr, *p3 = nullptr;
	ASSERT_EQ(map(h, size, 0, kRW, &p1), kHelErrNone);
	ASSERT_EQ(map(h, size, 0, kRW, &p2), kHelErrNone);
	EXPECT_NE(p1, p2);
	auto *q1 = static_cast<HelQueue *>(p1);
	auto *q2 = static_cast<HelQueue *>(p2);
	EXPECT_EQ(load(&q1->sqFirst), 2 | kHelNextPresent) << "the SQ starts after the CQ chunks";
	EXPECT_EQ(load(&q2->sqFirst), load(&q1->sqFirst));
	// User writes through one mapping show in the other ...
	store(&q1->cqFirst, 0 | kHelNextPresent);
	EXPECT_EQ(load(&q2->cqFirst), 0 | kHelNextPresent);
	// ... and so do the kernel's.
	ASSERT_EQ(helSubmitAsyncNop(h, 0x1234), kHelErrNone);
	auto *c1 = reinterpret_cast<HelChunk *>(static_cast<char *>(p1) + 64);
	auto *c2 = reinterpret_cast<HelChunk *>(static_cast<char *>(p2) + 64);
	EXPECT_EQ(load(&c1->progressFutex), 24);
	EXPECT_EQ(std::memcmp(c1, c2, 64), 0);
	EXPECT_EQ(read_chunk(c2).at(0).context, 0x1234u);

	ASSERT_EQ(helUnmapMemory(kHelNullHandle, p1, size), kHelErrNone);
	ASSERT_EQ(map(h, size, 0, kRW, &p3), kHelErrNone);
	auto *c3 = reinterpret_cast<HelChunk *>(static_cast<char *>(p3) + 64);
	EXPECT_EQ(std::memcmp(c3, c2, 64), 0) << "the queue's bytes survive an unmap";
	ASSERT_EQ(helSubmitAsyncNop(h, 0x5678), kHelErrNone);
	auto seen = read_chunk(c3);
	ASSERT_EQ(seen.size(), 2u);
	EXPECT_EQ(seen[1].context, 0x5678u);
	EXPECT_EQ(helUnmapMemory(kHelNullHandle, p2, size), kHelErrNone);
	EXPECT_EQ(helUnmapMemory(kHelNullHandle, p3, size), kHelErrNone);
}

// ---------------------------------------------------------------- the raw ring protocol

TEST(QueueRing, RawNopRoundTripWithoutDispatcher) {
	helsim::Machine machine;
	auto a = machine.attach();
	HelQueueParameters params{0, 4, 256, 2};
	HelHandle h;
	ASSERT_EQ(helCreateQueue(&params, &h), kHelErrNone);
	const std::size_t stride = 320; // roundup64(8 + 256); 64 + 6 * 320 = 1984: one page
	void *p = nullptr;
	ASSERT_EQ(helMapMemory(h, kHelNullHandle, nullptr, 0, kPage, kRW, &p), kHelErrNone);
	EXPECT_EQ(map(h, 2 * kPage), kHelErrBufferTooSmall);
	auto *queue = static_cast<HelQueue *>(p);
	auto chunk = [&](int i) {
		return reinterpret_cast<HelChunk *>(static_cast<char *>(p) + 64 + i * stride);
	};
	// The kernel pre-links the SQ chunks and publishes the first.
	ASSERT_EQ(load(&queue->sqFirst), 4 | kHelNextPresent);
	EXPECT_EQ(load(&chunk(4)->next), 5 | kHelNextPresent);
	EXPECT_EQ(load(&chunk(5)->next) & kHelNextPresent, 0);
	// Set up the CQ as helix does.
	for (int i = 0; i < 4; ++i)
		chunk(i)->next = chunk(i)->progressFutex = 0;
	std::memset(chunk(0)->buffer, 0xAA, 256);
	store(&queue->cqFirst, 0 | kHelNextPresent);
	for (int i = 1; i < 4; ++i)
		store(&chunk(i - 1)->next, i | kHelNextPresent);
	__atomic_fetch_or(&queue->kernelNotify, kHelKernelNotifySupplyCqChunks, __ATOMIC_RELEASE);
	ASSERT_EQ(helDriveQueue(h, 0, 0), kHelErrNone);
	EXPECT_EQ(load(&queue->kernelNotify), 0) << "the kernel clears SupplyCqChunks";
	EXPECT_EQ(load(&queue->userNotify), 0) << "nothing posted yet";

	// Three AsyncNops by hand into the SQ chunk sqFirst names.
	HelChunk *sq = chunk(load(&queue->sqFirst) & ~kHelNextPresent);
	const std::uintptr_t ctx[3] = {0x1111, 0xDEADBEEFCAFEull, 7};
	for (int i = 0; i < 3; ++i) {
		HelElement e{0, kHelSubmitAsyncNop, reinterpret_cast<void *>(ctx[i])};
		std::memcpy(sq->buffer + i * sizeof(HelElement), &e, sizeof(e));
	}
	store(&sq->progressFutex, 3 * sizeof(HelElement));
	__atomic_fetch_or(&queue->kernelNotify, kHelKernelNotifySqProgress, __ATOMIC_RELEASE);
	ASSERT_EQ(helDriveQueue(h, 0, 0), kHelErrNone);
	EXPECT_EQ(load(&queue->kernelNotify) & kHelKernelNotifySqProgress, 0);

	// Each CQ element: {length 8, opcode 0, context} + HelSimpleResult, 8-byte aligned.
	EXPECT_EQ(load(&chunk(0)->progressFutex), 3 * 24) << "no Done/Full bits, 3 * (16 + 8)";
	EXPECT_TRUE(load(&queue->userNotify) & kHelUserNotifyCqProgress);
	for (int i = 0; i < 3; ++i) {
		HelElement e;
		std::memcpy(&e, chunk(0)->buffer + i * 24, sizeof(e));
		EXPECT_EQ(e.length, sizeof(HelSimpleResult));
		EXPECT_EQ(e.opcode, 0u);
		EXPECT_EQ(reinterpret_cast<std::uintptr_t>(e.context), ctx[i]);
		HelSimpleResult r;
		std::memcpy(&r, chunk(0)->buffer + i * 24 + 16, sizeof(r));
		EXPECT_EQ(r.error, kHelErrNone);
		EXPECT_EQ(r.reserved, 0);
	}
	EXPECT_EQ(static_cast<unsigned char>(chunk(0)->buffer[72]), 0xAA) << "nothing past progress";
	EXPECT_EQ(load(&chunk(1)->progressFutex), 0);
	ASSERT_EQ(helUnmapMemory(kHelNullHandle, p, kPage), kHelErrNone);
	a.reset();
	auto report = machine.run();
	EXPECT_EQ(report.counters.operations_submitted, 3u);
	EXPECT_EQ(report.counters.completions_posted, 3u);
	EXPECT_EQ(report.operations_pending(), 0u);
}

TEST(QueueRing, PayloadIsPaddedToEightBytesWithZeros) {
	helsim::Machine machine;
	helsim::ext::register_syscall(machine, 300, "testComplete5",
			[](helsim::ext::Caller &c, const HelWord *args, HelWord *) {
				const char bytes[5] = {'h', 'e', 'l', 'l', 'o'};
				return c.complete(static_cast<HelHandle>(args[0]), args[1],
						std::as_bytes(std::span{bytes}));
			});
	auto a = machine.attach();
	RawQueue rq{2, 0, 128};
	std::memset(rq.chunk(0)->buffer, 0xAA, 128);
	rq.supply_all_cq();
	ASSERT_EQ(helSyscall2(300, static_cast<HelWord>(rq.handle), 5), kHelErrNone);
	ASSERT_EQ(helSubmitAsyncNop(rq.handle, 6), kHelErrNone);
	const char *b = rq.chunk(0)->buffer;
	HelElement e;
	std::memcpy(&e, b, sizeof(e));
	EXPECT_EQ(e.length, 8u) << "5 bytes padded to 8";
	EXPECT_EQ(std::memcmp(b + 16, "hello\0\0\0", 8), 0) << "padding is zeroed";
	std::memcpy(&e, b + 24, sizeof(e));
	EXPECT_EQ(reinterpret_cast<std::uintptr_t>(e.context), 6u) << "next element 8-aligned";
	EXPECT_EQ(load(&rq.chunk(0)->progressFutex), 48);
}

TEST(QueueRing, FullChunkIsRetiredWithDoneAndProducerMovesToNext) {
	helsim::Machine machine;
	auto a = machine.attach();
	RawQueue rq{4, 0, 64}; // 2 nop completions (24 B) per chunk
	rq.supply_all_cq();
	for (std::uintptr_t i = 0; i < 5; ++i)
		ASSERT_EQ(helSubmitAsyncNop(rq.handle, i), kHelErrNone);
	EXPECT_EQ(load(&rq.chunk(0)->progressFutex), 48 | kHelProgressFull | kHelProgressDone);
	EXPECT_EQ(load(&rq.chunk(1)->progressFutex), 48 | kHelProgressFull | kHelProgressDone);
	EXPECT_EQ(load(&rq.chunk(2)->progressFutex), 24);
	EXPECT_EQ(load(&rq.chunk(3)->progressFutex), 0);
	std::vector<std::uintptr_t> got;
	for (unsigned i = 0; i < 3; ++i)
		append(got, rq.chunk(i));
	EXPECT_EQ(got, iota(5));
}

TEST(QueueRing, ExhaustedChunksKeepCompletionsPendingUntilSupplied) {
	helsim::Machine machine;
	auto a = machine.attach();
	RawQueue rq{2, 0, 64}; // 2 per chunk, 4 in the whole ring
	rq.supply_all_cq();
	for (std::uintptr_t i = 0; i < 7; ++i)
		ASSERT_EQ(helSubmitAsyncNop(rq.handle, i), kHelErrNone);
	EXPECT_EQ(load(&rq.chunk(0)->progressFutex), 48 | kHelProgressFull | kHelProgressDone);
	EXPECT_EQ(load(&rq.chunk(1)->progressFutex), 48 | kHelProgressFull)
			<< "Full without Done: the producer stalls waiting for next";
	auto c = counters_now(machine);
	EXPECT_EQ(c.operations_submitted, 7u);
	EXPECT_EQ(c.operations_completed, 4u) << "three completions wait inside the kernel";
	EXPECT_EQ(c.completions_posted, 4u);

	std::vector<std::uintptr_t> got = contexts(rq.chunk(0));
	// Recycle chunk 0 behind chunk 1; a post arriving now must queue behind the waiting ones.
	store(&rq.chunk(0)->next, 0);
	store(&rq.chunk(0)->progressFutex, 0);
	store(&rq.chunk(1)->next, 0 | kHelNextPresent);
	ASSERT_EQ(helSubmitAsyncNop(rq.handle, 7), kHelErrNone);
	__atomic_fetch_or(&rq.q->kernelNotify, kHelKernelNotifySupplyCqChunks, __ATOMIC_RELEASE);
	ASSERT_EQ(helDriveQueue(rq.handle, 0, 0), kHelErrNone);
	EXPECT_EQ(load(&rq.q->kernelNotify) & kHelKernelNotifySupplyCqChunks, 0);
	EXPECT_EQ(load(&rq.chunk(1)->progressFutex), 48 | kHelProgressFull | kHelProgressDone);
	EXPECT_EQ(load(&rq.chunk(0)->progressFutex), 48 | kHelProgressFull);
	append(got, rq.chunk(1));
	append(got, rq.chunk(0));
	rq.recycle(1, 0);
	EXPECT_EQ(load(&rq.chunk(0)->progressFutex), 48 | kHelProgressFull | kHelProgressDone);
	EXPECT_EQ(load(&rq.chunk(1)->progressFutex), 48);
	append(got, rq.chunk(1));
	EXPECT_EQ(got, iota(8));
	c = counters_now(machine);
	EXPECT_EQ(c.operations_submitted, 8u);
	EXPECT_EQ(c.operations_completed, 8u);
	EXPECT_EQ(c.completions_posted, 8u);
}

TEST(QueueRing, PostsWaitForAValidFirstChunk) {
	helsim::Machine machine;
	auto a = machine.attach();
	RawQueue rq{2, 0, 64};
	for (std::uintptr_t i = 0; i < 2; ++i)
		ASSERT_EQ(helSubmitAsyncNop(rq.handle, i), kHelErrNone);
	EXPECT_EQ(load(&rq.chunk(0)->progressFutex), 0) << "cqFirst lacks NextPresent";
	EXPECT_FALSE(load(&rq.q->userNotify) & kHelUserNotifyError);
	EXPECT_EQ(counters_now(machine).operations_completed, 0u);
	store(&rq.q->cqFirst, 99 | kHelNextPresent); // no such CQ chunk: a contract violation
	ASSERT_EQ(helSubmitAsyncNop(rq.handle, 2), kHelErrNone);
	ASSERT_EQ(helDriveQueue(rq.handle, 0, 0), kHelErrNone);
	EXPECT_TRUE(load(&rq.q->userNotify) & kHelUserNotifyError);
	EXPECT_EQ(load(&rq.chunk(0)->progressFutex), 0);
	rq.supply_all_cq(); // nothing was lost meanwhile
	EXPECT_EQ(contexts(rq.chunk(0)), (std::vector<std::uintptr_t>{0, 1}));
	EXPECT_EQ(contexts(rq.chunk(1)), (std::vector<std::uintptr_t>{2}));
	EXPECT_EQ(counters_now(machine).operations_completed, 3u);
}

TEST(QueueSq, ConsumedChunksAreRecycledBehindTheTail) {
	helsim::Machine machine;
	auto a = machine.attach();
	RawQueue rq{4, 2, 128}; // SQ chunks 4 and 5; 8 nops per SQ chunk, 5 completions per CQ chunk
	rq.supply_all_cq();
	std::size_t off = 0;
	for (int i = 0; i < 8; ++i)
		off = rq.put_sq(4, off, kHelSubmitAsyncNop, static_cast<std::uintptr_t>(i));
	ASSERT_EQ(load(&rq.chunk(4)->next), 5 | kHelNextPresent);
	store(&rq.chunk(4)->progressFutex, static_cast<int>(off) | kHelProgressDone);
	off = rq.put_sq(5, 0, kHelSubmitAsyncNop, 8);
	off = rq.put_sq(5, off, kHelSubmitAsyncNop, 9);
	rq.kick_sq();
	EXPECT_EQ(load(&rq.chunk(4)->progressFutex), 0) << "the kernel reset the finished chunk";
	EXPECT_EQ(load(&rq.chunk(4)->next), 0);
	EXPECT_EQ(load(&rq.chunk(5)->next), 4 | kHelNextPresent) << "and appended it to the tail";
	EXPECT_TRUE(load(&rq.q->userNotify) & kHelUserNotifySupplySqChunks);
	__atomic_fetch_and(&rq.q->userNotify, ~kHelUserNotifySupplySqChunks, __ATOMIC_ACQ_REL);
	// Fill chunk 5, retire it and go on in chunk 4 again.
	for (int i = 10; i < 16; ++i)
		off = rq.put_sq(5, off, kHelSubmitAsyncNop, static_cast<std::uintptr_t>(i));
	store(&rq.chunk(5)->progressFutex, static_cast<int>(off) | kHelProgressDone);
	off = rq.put_sq(4, 0, kHelSubmitAsyncNop, 16);
	rq.kick_sq();
	EXPECT_EQ(load(&rq.chunk(5)->progressFutex), 0);
	EXPECT_EQ(load(&rq.chunk(4)->next), 5 | kHelNextPresent);
	EXPECT_TRUE(load(&rq.q->userNotify) & kHelUserNotifySupplySqChunks);
	std::vector<std::uintptr_t> got;
	for (unsigned i = 0; i < 4; ++i)
		append(got, rq.chunk(i));
	EXPECT_EQ(got, iota(17));
	EXPECT_FALSE(load(&rq.q->userNotify) & kHelUserNotifyError);
}

TEST(QueueSq, MalformedElementsSetErrorBit) {
	helsim::Machine machine;
	auto a = machine.attach();
	// progress: element length past it, beyond the chunk size, half an element header.
	for (int progress : {16, 4096, 8}) {
		RawQueue rq{2, 2, 128};
		rq.supply_all_cq();
		HelElement e{100, kHelSubmitAsyncNop, reinterpret_cast<void *>(1)};
		std::memcpy(rq.chunk(2)->buffer, &e, sizeof(e));
		store(&rq.chunk(2)->progressFutex, progress);
		rq.kick_sq();
		EXPECT_TRUE(load(&rq.q->userNotify) & kHelUserNotifyError) << progress;
		EXPECT_EQ(load(&rq.chunk(0)->progressFutex), 0) << "nothing ran for " << progress;
		if (progress == 16) { // the queue keeps working after the violation
			rq.put_sq(2, 16, kHelSubmitAsyncNop, 2);
			rq.kick_sq();
			EXPECT_EQ(contexts(rq.chunk(0)), (std::vector<std::uintptr_t>{2}));
		}
	}
}

TEST(QueueSq, SubmissionErrorsArriveWithAllOnesContext) {
	helsim::Machine machine;
	auto a = machine.attach();
	RawQueue rq{2, 2, 256};
	rq.supply_all_cq();
	HelSqAwaitClock clock{0, 0};
	HelSqCancel cancel{1};
	std::size_t off = 0;
	off = rq.put_sq(2, off, 0, 1);    // opcode 0: none
	off = rq.put_sq(2, off, 1000, 2); // beyond the table
	off = rq.put_sq(2, off, kHelSubmitAwaitClock, 3, &clock, sizeof(clock) - 8);
	off = rq.put_sq(2, off, kHelSubmitCancel, 4, &cancel, 0);
	off = rq.put_sq(2, off, kHelSubmitAwaitClock, 5, &clock, sizeof(clock)); // valid, in the past
	rq.kick_sq();
	auto seen = read_chunk(rq.chunk(0));
	ASSERT_EQ(seen.size(), 5u);
	const std::uintptr_t all_ones = ~std::uintptr_t{0};
	const HelError expected[4] = {kHelErrIllegalSyscall, kHelErrIllegalSyscall,
			kHelErrBufferTooSmall, kHelErrBufferTooSmall};
	for (int i = 0; i < 4; ++i) {
		EXPECT_EQ(seen[i].context, all_ones) << i;
		EXPECT_EQ(seen[i].length, sizeof(HelSimpleResult));
		EXPECT_EQ(seen[i].result.error, expected[i]) << i;
	}
	EXPECT_EQ(seen[4].context, 5u);
	EXPECT_EQ(seen[4].result.error, kHelErrNone);
	EXPECT_FALSE(load(&rq.q->userNotify) & kHelUserNotifyError) << "errors are not violations";
	auto c = counters_now(machine);
	EXPECT_EQ(c.operations_submitted, 1u) << "a refused submission is not an operation";
	EXPECT_EQ(c.operations_completed, 1u);
	EXPECT_EQ(c.completions_posted, 5u);
}

TEST(QueueSubmit, AsyncNopSyscallChecksTheHandle) {
	helsim::Machine machine;
	auto a = machine.attach();
	RawQueue rq{2, 0, 64};
	rq.supply_all_cq();
	EXPECT_EQ(helSubmitAsyncNop(12345, 1), kHelErrNoDescriptor);
	EXPECT_EQ(helSubmitAsyncNop(-77, 1), kHelErrNoDescriptor);
	HelHandle universe;
	ASSERT_EQ(helCreateUniverse(&universe), kHelErrNone);
	EXPECT_EQ(helSubmitAsyncNop(universe, 1), kHelErrBadDescriptor);
	HelHandle weak;
	ASSERT_EQ(helTransferDescriptor(rq.handle, kHelThisUniverse, kHelTransferDescriptorOut,
					  kHelRightsMax & ~static_cast<uint32_t>(kHelRightInvoke), 0, &weak),
			kHelErrNone);
	EXPECT_EQ(helSubmitAsyncNop(weak, 1), kHelErrBadRights);
	EXPECT_EQ(load(&rq.chunk(0)->progressFutex), 0) << "no failed call posted anything";
	EXPECT_EQ(helSubmitAsyncNop(rq.handle, 2), kHelErrNone);
	EXPECT_EQ(contexts(rq.chunk(0)), (std::vector<std::uintptr_t>{2}));
}

// ---------------------------------------------------------------- through helsim::Dispatcher

TEST(QueueDispatcher, HeldElementsBlockRecyclingAndReleaseRecovers) {
	helsim::Machine machine;
	auto a = machine.attach();
	helsim::Dispatcher d{{.cq_chunks = 2, .sq_chunks = 2, .chunk_size = 64}};
	for (std::uintptr_t i = 0; i < 10; ++i)
		d.submit(kHelSubmitAsyncNop, i, std::span<const std::byte>{});
	d.flush();
	std::vector<helsim::Element> held;
	std::vector<std::uintptr_t> got;
	auto drain = [&] {
		while (auto e = d.poll()) {
			EXPECT_EQ(e->error(), kHelErrNone);
			got.push_back(e->context());
			held.push_back(std::move(*e));
		}
	};
	drain();
	ASSERT_EQ(got, iota(4)) << "two chunks of two completions, both held";
	EXPECT_EQ(d.held_chunks(), 2u);
	auto *chunk1 = reinterpret_cast<HelChunk *>(
			reinterpret_cast<char *>(d.shared()) + 64 + stride_for(64));
	EXPECT_TRUE(load(&chunk1->progressFutex) & kHelProgressFull);
	auto c = counters_now(machine);
	EXPECT_EQ(c.operations_submitted - c.operations_completed, 6u) << "backpressure, not loss";
	held.erase(held.begin(), held.begin() + 2); // frees chunk 0: the kernel continues there
	drain();
	ASSERT_EQ(got, iota(6));
	for (int round = 0; round < 4 && got.size() < 10; ++round) {
		held.clear();
		drain();
	}
	EXPECT_EQ(got, iota(10));
	c = counters_now(machine);
	EXPECT_EQ(c.operations_completed, 10u);
	EXPECT_EQ(c.completions_posted, 10u);
}

TEST(QueueDispatcher, SqChunkRecyclingCompletesEverything) {
	helsim::Machine machine;
	std::atomic<int> completed{0};
	machine.spawn("body", [&](std::span<const HelHandle>) {
		helsim::Dispatcher d{{.cq_chunks = 3, .sq_chunks = 2, .chunk_size = 128}};
		constexpr std::uintptr_t kCount = 3000; // the SQ holds 16 elements at a time
		HelSqAwaitClock past{0, 0};
		for (std::uintptr_t i = 0; i < kCount; ++i) {
			if (i % 3 == 0)
				d.submit(kHelSubmitAwaitClock, i, past);
			else
				d.submit(kHelSubmitAsyncNop, i, std::span<const std::byte>{});
		}
		for (std::uintptr_t i = 0; i < kCount; ++i) {
			auto e = d.wait();
			ASSERT_TRUE(e);
			ASSERT_EQ(e->context(), i);
			ASSERT_EQ(e->error(), kHelErrNone);
			++completed;
		}
		EXPECT_FALSE(d.poll());
		EXPECT_FALSE(
				__atomic_load_n(&d.shared()->userNotify, __ATOMIC_ACQUIRE) & kHelUserNotifyError);
	});
	auto report = machine.run();
	expect_clean(report);
	EXPECT_EQ(completed.load(), 3000);
	EXPECT_EQ(report.counters.completions_posted, 3000u);
}

// ---------------------------------------------------------------- many producers

TEST(QueueConcurrency, ManyThreadsWithTheirOwnDispatchers) {
	helsim::Machine machine{config(4)};
	constexpr int kThreads = 4;
	constexpr std::uintptr_t kNops = 4000;
	std::atomic<int> done{0};
	for (int t = 0; t < kThreads; ++t) {
		machine.spawn("producer" + std::to_string(t), [&, t](std::span<const HelHandle>) {
			uint8_t mask = static_cast<uint8_t>(1u << t);
			ASSERT_EQ(helSetAffinity(kHelThisThread, &mask, 1), kHelErrNone);
			helsim::Dispatcher d{{.cq_chunks = 2, .sq_chunks = 2, .chunk_size = 256}};
			std::uintptr_t next = 0;
			for (std::uintptr_t sent = 0; sent < kNops;) {
				std::uintptr_t batch = std::min<std::uintptr_t>(kNops - sent, 1 + (sent * 7) % 97);
				for (std::uintptr_t i = 0; i < batch; ++i)
					d.submit(kHelSubmitAsyncNop, sent++, std::span<const std::byte>{});
				while (next < sent) {
					auto e = d.wait();
					ASSERT_TRUE(e);
					ASSERT_EQ(e->context(), next++);
				}
			}
			int cpu = -1;
			helGetCurrentCpu(&cpu);
			EXPECT_EQ(cpu, t);
			++done;
		});
	}
	auto report = machine.run();
	expect_clean(report);
	EXPECT_EQ(done.load(), kThreads);
	EXPECT_EQ(report.counters.operations_completed, kThreads * kNops);
}

namespace {
constexpr std::uint32_t kPostSyscall = 300;

// args: queue, context, value. Posts a 16-byte payload {context, value}.
HelError post_into_queue(helsim::ext::Caller &caller, const HelWord *args, HelWord *) {
	const std::uint64_t payload[2] = {args[1], args[2]};
	return caller.complete(static_cast<HelHandle>(args[0]), args[1],
			std::as_bytes(std::span{payload}));
}

void many_producers_one_queue(unsigned cpus, int producers, std::uint64_t per_producer,
		unsigned cq_chunks) {
	helsim::Machine machine{config(cpus)};
	helsim::ext::register_syscall(machine, kPostSyscall, "testPost", post_into_queue);
	std::atomic<std::uint64_t> received{0};
	std::atomic<int> producers_done{0};
	machine.spawn("consumer", [&](std::span<const HelHandle>) {
		helsim::Dispatcher d{{.cq_chunks = cq_chunks, .sq_chunks = 0, .chunk_size = 256}};
		const HelHandle queue = d.queue();
		for (int p = 0; p < producers; ++p) {
			machine.spawn("producer" + std::to_string(p),
					[&, p](std::span<const HelHandle> h) {
						uint8_t mask = static_cast<uint8_t>(1u << (p % cpus));
						ASSERT_EQ(helSetAffinity(kHelThisThread, &mask, 1), kHelErrNone);
						for (std::uint64_t i = 0; i < per_producer; ++i) {
							HelWord context = (static_cast<HelWord>(p) << 32) | i;
							ASSERT_EQ(helSyscall3(kPostSyscall, static_cast<HelWord>(h[0]), context,
											  ~context),
									kHelErrNone);
							if (i % 64 == 0)
								helYield();
						}
						++producers_done;
					},
					{queue});
		}
		std::vector<std::uint64_t> next(static_cast<std::size_t>(producers), 0);
		const std::uint64_t total = per_producer * static_cast<std::uint64_t>(producers);
		for (std::uint64_t n = 0; n < total; ++n) {
			auto e = d.wait();
			ASSERT_TRUE(e) << "no alert was sent";
			auto p = static_cast<std::size_t>(e->context() >> 32);
			ASSERT_LT(p, next.size());
			ASSERT_EQ(e->context() & 0xFFFFFFFFu, next[p]) << "producer " << p << " out of order";
			++next[p];
			ASSERT_EQ(e->payload().size(), 16u);
			EXPECT_EQ(e->as<std::uint64_t>(0), e->context());
			EXPECT_EQ(e->as<std::uint64_t>(8), ~static_cast<std::uint64_t>(e->context()));
			++received;
		}
		for (std::uint64_t n : next)
			EXPECT_EQ(n, per_producer);
		EXPECT_FALSE(d.poll()) << "nothing beyond what was posted";
	});
	auto report = machine.run();
	expect_clean(report);
	EXPECT_EQ(producers_done.load(), producers);
	EXPECT_EQ(received.load(), per_producer * static_cast<std::uint64_t>(producers));
	EXPECT_EQ(report.counters.completions_posted, received.load());
}
} // namespace

TEST(QueueConcurrency, ManyProducersOneQueueTwoCpus) { many_producers_one_queue(2, 3, 5000, 2); }

TEST(QueueConcurrency, ManyProducersOneQueueFourCpus) { many_producers_one_queue(4, 6, 2500, 4); }

// ---------------------------------------------------------------- helDriveQueue and alerts

TEST(QueueDrive, UnknownFlagsAreIllegalArgs) {
	helsim::Machine machine;
	auto a = machine.attach();
	RawQueue rq{2, 2, 64};
	EXPECT_EQ(helDriveQueue(rq.handle, 2, 0), kHelErrIllegalArgs);
	EXPECT_EQ(helDriveQueue(rq.handle, kHelDriveWait | 2, 0), kHelErrIllegalArgs);
	EXPECT_EQ(helDriveQueue(rq.handle, 0x80000000u, 0), kHelErrIllegalArgs);
	EXPECT_EQ(helDriveQueue(rq.handle, 0, 0), kHelErrNone);
	EXPECT_EQ(helDriveQueue(999, 0, 0), kHelErrNoDescriptor);
	EXPECT_EQ(helAlertQueue(999), kHelErrNoDescriptor);
}

TEST(QueueDrive, WaitReturnsAtOnceWhenAnUnmaskedBitIsSet) {
	helsim::Machine machine;
	machine.spawn("body", [](std::span<const HelHandle>) {
		RawQueue rq{2, 0, 64};
		rq.supply_all_cq();
		ASSERT_EQ(helSubmitAsyncNop(rq.handle, 1), kHelErrNone);
		ASSERT_TRUE(load(&rq.q->userNotify) & kHelUserNotifyCqProgress);
		// If this blocked, nothing could wake it and run() would report the machine stuck.
		EXPECT_EQ(helDriveQueue(rq.handle, kHelDriveWait, 0), kHelErrNone);
		EXPECT_EQ(helDriveQueue(rq.handle, kHelDriveWait,
						  ~static_cast<uint32_t>(kHelUserNotifyCqProgress)),
				kHelErrNone);
	});
	expect_clean(machine.run());
}

TEST(QueueDrive, WaitBlocksUntilACompletionFromAnotherThread) {
	helsim::Machine machine;
	std::atomic<bool> waiting{false};
	machine.spawn("waiter", [&](std::span<const HelHandle>) {
		helsim::Dispatcher d{{.cq_chunks = 2, .sq_chunks = 0, .chunk_size = 64}};
		machine.spawn("poster",
				[&](std::span<const HelHandle> h) {
					while (!waiting.load())
						helYield();
					EXPECT_EQ(helSubmitAsyncNop(h[0], 77), kHelErrNone);
				},
				{d.queue()});
		EXPECT_FALSE(d.poll());
		waiting = true;
		auto e = d.wait();
		ASSERT_TRUE(e);
		EXPECT_EQ(e->context(), 77u);
	});
	expect_clean(machine.run());
}

TEST(QueueDrive, AlertFromAnotherThreadWakesTheWaiter) {
	helsim::Machine machine;
	std::atomic<bool> waiting{false};
	machine.spawn("waiter", [&](std::span<const HelHandle>) {
		helsim::Dispatcher d{{.cq_chunks = 2, .sq_chunks = 2, .chunk_size = 64}};
		machine.spawn("alerter",
				[&](std::span<const HelHandle> h) {
					while (!waiting.load())
						helYield();
					EXPECT_EQ(helAlertQueue(h[0]), kHelErrNone);
				},
				{d.queue()});
		waiting = true;
		EXPECT_FALSE(d.wait()) << "an alert, not an element";
		// The queue still works afterwards.
		d.submit(kHelSubmitAsyncNop, 5, std::span<const std::byte>{});
		auto e = d.wait();
		ASSERT_TRUE(e);
		EXPECT_EQ(e->context(), 5u);
	});
	expect_clean(machine.run());
}

TEST(QueueDrive, MaskHidingCqProgressIgnoresCompletionsButNotAlerts) {
	helsim::Machine machine;
	std::atomic<bool> waiting{false};
	std::atomic<bool> alerted{false};
	machine.spawn("waiter", [&](std::span<const HelHandle>) {
		RawQueue rq{4, 0, 256};
		rq.supply_all_cq();
		machine.spawn("poster",
				[&](std::span<const HelHandle> h) {
					while (!waiting.load())
						helYield();
					for (std::uintptr_t i = 0; i < 8; ++i) {
						EXPECT_EQ(helSubmitAsyncNop(h[0], i), kHelErrNone);
						helYield();
					}
					alerted = true;
					EXPECT_EQ(helAlertQueue(h[0]), kHelErrNone);
				},
				{rq.handle});
		__atomic_store_n(&rq.q->userNotify, 0, __ATOMIC_SEQ_CST);
		waiting = true;
		ASSERT_EQ(helDriveQueue(rq.handle, kHelDriveWait,
						  ~static_cast<uint32_t>(kHelUserNotifyAlert)),
				kHelErrNone);
		EXPECT_TRUE(alerted.load()) << "woken before the alert";
		int bits = load(&rq.q->userNotify);
		EXPECT_TRUE(bits & kHelUserNotifyAlert);
		EXPECT_EQ(read_chunk(rq.chunk(0)).size(), 8u) << "completions posted before the alert";
	});
	expect_clean(machine.run());
}
