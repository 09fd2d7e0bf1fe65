// Tests of the hel queue (src/kernel/ipc/queue.cpp): creation, mapping, the raw CQ/SQ ring
// protocol of hel-reference.md section 4a, backpressure, submission errors and the
// dispatcher. Many producers and helDriveQueue / helAlertQueue waiting are in
// queue_drive_test.cpp.
#include "queue_support.hpp"

using namespace helsim::queue_test;

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
	EXPECT_FALSE(helsim::test::info_of(h).rights & kHelRightExecute);
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
	__atomic_fetch_or(&rq.q->kernelNotify, kHelKernelNotifySupplyCqChunks, __ATOMIC_RELEASE);
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

// An Element's destructor hands its chunk back with a drive, which fails once the queue handle
// is closed: the error waits for the next call that can throw, instead of escaping the
// destructor (std::terminate).
TEST(QueueDispatcher, ADriveThatFailsInAnElementsDestructorIsThrownByTheNextFlush) {
	helsim::Machine machine;
	auto a = machine.attach();
	helsim::Dispatcher d{{.cq_chunks = 2, .sq_chunks = 2, .chunk_size = 64}};
	for (std::uintptr_t i = 0; i < 6; ++i)
		d.submit(kHelSubmitAsyncNop, i, std::span<const std::byte>{});
	d.flush();
	std::vector<helsim::Element> held;
	while (auto e = d.poll())
		held.push_back(std::move(*e));
	ASSERT_EQ(held.size(), 4u) << "two full chunks, both held";
	ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, d.queue()), kHelErrNone);
	held.clear(); // frees both chunks: each drop drives the closed handle
	try {
		d.flush();
		ADD_FAILURE() << "the failed drive was not reported";
	} catch (const helsim::HelException &e) {
		EXPECT_EQ(e.error(), kHelErrNoDescriptor);
	}
	EXPECT_NO_THROW(d.flush()) << "reported once";
}

TEST(QueueDispatcher, FreshContextsCountUpPerDispatcherAboveTheCallersRange) {
	helsim::Machine machine;
	auto a = machine.attach();
	helsim::Dispatcher first;
	helsim::Dispatcher second;
	EXPECT_EQ(first.fresh_context(), 0x1000u);
	EXPECT_EQ(first.fresh_context(), 0x1001u);
	EXPECT_EQ(second.fresh_context(), 0x1000u) << "each dispatcher counts its own contexts";
	EXPECT_EQ(first.fresh_context(), 0x1002u);
}

// A queue that cannot be mapped (here, the machine's address window is full) is closed
// before the constructor throws: no destructor runs after a throw.
TEST(QueueDispatcher, AQueueThatCannotBeMappedIsClosedBeforeTheThrow) {
	helsim::Machine machine;
	machine.spawn("body", [](std::span<const HelHandle>) {
		// Lazy memory as large as the window, mapped until nothing fits: no frame is taken.
		constexpr std::size_t kWindow = std::size_t{16} << 30;
		HelHandle memory;
		ASSERT_EQ(helAllocateMemory(kWindow, 0, nullptr, &memory), kHelErrNone);
		std::vector<std::pair<void *, std::size_t>> mappings;
		for (std::size_t size = kWindow; size >= 4096; size /= 2) {
			void *at = nullptr;
			while (helMapMemory(memory, kHelNullHandle, nullptr, 0, size, kHelMapProtRead, &at) ==
					kHelErrNone)
				mappings.emplace_back(at, size);
		}
		try {
			helsim::Dispatcher d;
			ADD_FAILURE() << "the queue was mapped into a full window";
		} catch (const helsim::HelException &e) {
			EXPECT_EQ(e.error(), kHelErrNoMemory) << e.what();
		}
		// Handle values are handed out in order: the queue's was the one after `memory`.
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, memory + 1), kHelErrNoDescriptor);
		for (auto [at, size] : mappings)
			EXPECT_EQ(helUnmapMemory(kHelNullHandle, at, size), kHelErrNone);
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, memory), kHelErrNone);
	});
	helsim::test::expect_clean(machine.run());
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

// ---------------------------------------------------------------- one SQ pass's completions

// The completions of one pass are written to the CQ together when it ends: they continue in
// the chunk that holds earlier completions, and where it fills, that chunk is retired with
// Full | Done and the rest goes on in the next, in submission order.
TEST(QueueRing, CompletionsOfOnePassSpanAChunkBoundary) {
	helsim::Machine machine;
	auto a = machine.attach();
	RawQueue rq{4, 2, 128}; // 5 nop completions (24 B) per CQ chunk, 8 nops per SQ chunk
	rq.supply_all_cq();
	for (std::uintptr_t i = 0; i < 3; ++i)
		ASSERT_EQ(helSubmitAsyncNop(rq.handle, i), kHelErrNone);
	std::size_t off = 0;
	for (std::uintptr_t i = 3; i < 7; ++i)
		off = rq.put_sq(4, off, kHelSubmitAsyncNop, i);
	rq.kick_sq();
	EXPECT_EQ(load(&rq.chunk(0)->progressFutex), 120 | kHelProgressFull | kHelProgressDone);
	EXPECT_EQ(load(&rq.chunk(1)->progressFutex), 48);
	std::vector<std::uintptr_t> got = contexts(rq.chunk(0));
	append(got, rq.chunk(1));
	EXPECT_EQ(got, iota(7));
	EXPECT_TRUE(load(&rq.q->userNotify) & kHelUserNotifyCqProgress);
	auto c = counters_now(machine);
	EXPECT_EQ(c.operations_completed, 7u);
	EXPECT_EQ(c.completions_posted, 7u);
}

// The CQ runs out in the middle of a pass: what fits is written, the rest of the pass waits
// in the kernel behind it and arrives, in order and once, when user space supplies a chunk.
TEST(QueueRing, CqFullInTheMiddleOfAPassKeepsTheRestWaitingInOrder) {
	helsim::Machine machine;
	auto a = machine.attach();
	RawQueue rq{2, 2, 128}; // 10 completions in the whole ring
	rq.supply_all_cq();
	for (std::uintptr_t i = 0; i < 6; ++i)
		ASSERT_EQ(helSubmitAsyncNop(rq.handle, i), kHelErrNone);
	std::size_t off = 0;
	for (std::uintptr_t i = 6; i < 14; ++i)
		off = rq.put_sq(2, off, kHelSubmitAsyncNop, i);
	rq.kick_sq();
	EXPECT_EQ(load(&rq.chunk(0)->progressFutex), 120 | kHelProgressFull | kHelProgressDone);
	EXPECT_EQ(load(&rq.chunk(1)->progressFutex), 120 | kHelProgressFull)
			<< "Full without Done: the rest of the pass waits for a next chunk";
	auto c = counters_now(machine);
	EXPECT_EQ(c.operations_submitted, 14u);
	EXPECT_EQ(c.operations_completed, 10u) << "four completions of the pass wait in the kernel";
	std::vector<std::uintptr_t> got = contexts(rq.chunk(0));
	append(got, rq.chunk(1));
	rq.recycle(0, 1);
	EXPECT_EQ(load(&rq.chunk(1)->progressFutex), 120 | kHelProgressFull | kHelProgressDone);
	EXPECT_EQ(load(&rq.chunk(0)->progressFutex), 96);
	append(got, rq.chunk(0));
	EXPECT_EQ(got, iota(14));
	c = counters_now(machine);
	EXPECT_EQ(c.operations_completed, 14u);
	EXPECT_EQ(c.completions_posted, 14u);
}

// A pass whose own completions outgrow what one chunk can stage writes what is staged to the
// CQ and stages the rest from the start: the elements stay in submission order, each with its
// own context and a zeroed result.
TEST(QueueRing, CompletionsOfOnePassOutgrowingTheStageStayInOrder) {
	helsim::Machine machine;
	auto a = machine.attach();
	RawQueue rq{4, 2, 128}; // 5 nop completions (24 B) per CQ chunk and stage, 8 nops per SQ chunk
	rq.supply_all_cq();
	std::size_t off = 0;
	for (std::uintptr_t i = 0; i < 8; ++i)
		off = rq.put_sq(4, off, kHelSubmitAsyncNop, i);
	rq.kick_sq();
	EXPECT_EQ(load(&rq.chunk(0)->progressFutex), 120 | kHelProgressFull | kHelProgressDone);
	EXPECT_EQ(load(&rq.chunk(1)->progressFutex), 72);
	std::vector<std::uintptr_t> got = contexts(rq.chunk(0));
	append(got, rq.chunk(1));
	EXPECT_EQ(got, iota(8));
	for (unsigned c = 0; c < 2; ++c) {
		for (unsigned i = 0; i < (c ? 3u : 5u); ++i) {
			HelElement e;
			std::memcpy(&e, rq.chunk(c)->buffer + i * 24, sizeof(e));
			EXPECT_EQ(e.length, sizeof(HelSimpleResult));
			EXPECT_EQ(e.opcode, 0u);
			HelSimpleResult r;
			std::memcpy(&r, rq.chunk(c)->buffer + i * 24 + 16, sizeof(r));
			EXPECT_EQ(r.error, kHelErrNone);
			EXPECT_EQ(r.reserved, 0);
		}
	}
	auto c = counters_now(machine);
	EXPECT_EQ(c.operations_completed, 8u);
	EXPECT_EQ(c.completions_posted, 8u);
}

// The consumer stages a simple completion of its own with one store only when nothing else
// applies: a nop of a pass under completion-delay injection takes the posting path, where the
// injection holds it back. A fast path that skipped the check would complete it at once.
TEST(QueueRing, NopsOfAPassUnderDelayInjectionAreDelayedInOrder) {
	auto c = config(1);
	c.inject.delay_completion_ppm = 1'000'000;
	c.inject.completion_delay_ns = 0;
	helsim::Machine machine{c};
	{
		auto a = machine.attach();
		RawQueue rq{4, 2, 128};
		rq.supply_all_cq();
		std::size_t off = 0;
		for (std::uintptr_t i = 0; i < 3; ++i)
			off = rq.put_sq(4, off, kHelSubmitAsyncNop, i);
		rq.kick_sq();
		while ((load(&rq.chunk(0)->progressFutex) & kHelProgressMask) < 72)
			ASSERT_EQ(helYield(), kHelErrNone);
		EXPECT_EQ(contexts(rq.chunk(0)), iota(3));
	}
	auto report = machine.run();
	EXPECT_EQ(report.counters.injected_delays, 3u) << report.to_string();
	EXPECT_EQ(report.counters.operations_completed, 3u);
}

// The registry computes, when a row is written, the smallest chunk its result fits: the element
// header and the result padded to 8 bytes. A result that fills a chunk exactly is accepted; one
// byte more pads to 8 more and is kHelErrQueueTooSmall, before the handler runs.
TEST(QueueSq, AResultFillingAChunkExactlyFitsAndOneByteMoreIsTooSmall) {
	constexpr std::uint32_t kExact = helsim::ext::kFirstExtensionSqOpcode;
	constexpr std::uint32_t kOver = helsim::ext::kFirstExtensionSqOpcode + 1;
	constexpr std::size_t kChunk = 128;
	static std::atomic<int> handled{0};
	handled = 0;
	helsim::Machine machine;
	auto handler = [](helsim::ext::Caller &, const helsim::ext::SqSubmission &s) -> HelError {
		++handled;
		s.complete(kHelErrNone);
		return kHelErrNone;
	};
	// 105 bytes pad to 112, and 16 + 112 is the chunk; 113 bytes pad to 120.
	helsim::ext::register_sq_opcode(machine, kExact, "Exact", kChunk - sizeof(HelElement) - 7,
			handler);
	helsim::ext::register_sq_opcode(machine, kOver, "Over", kChunk - sizeof(HelElement) + 1,
			handler);
	auto a = machine.attach();
	RawQueue rq{4, 2, kChunk};
	rq.supply_all_cq();
	std::size_t off = rq.put_sq(4, 0, kExact, 1);
	rq.put_sq(4, off, kOver, 2);
	rq.kick_sq();
	auto seen = read_chunk(rq.chunk(0));
	ASSERT_EQ(seen.size(), 2u);
	EXPECT_EQ(seen[0].context, 1u);
	EXPECT_EQ(seen[0].result.error, kHelErrNone);
	EXPECT_EQ(seen[1].context, ~std::uintptr_t{0});
	EXPECT_EQ(seen[1].result.error, kHelErrQueueTooSmall);
	EXPECT_EQ(handled.load(), 1);
}
