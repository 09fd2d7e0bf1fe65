// Shared by the queue tests (queue_test.cpp, queue_drive_test.cpp): queue geometry, creation
// and mapping by hand, and a queue driven without helsim::Dispatcher (RawQueue).
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "../../support.hpp"
#include <helsim/dispatcher.hpp>
#include <helsim/extension.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace helsim::queue_test {

inline constexpr std::size_t kPage = 4096;

inline helsim::MachineConfig config(unsigned cpus, std::size_t memory = std::size_t{64} << 20) {
	helsim::MachineConfig c;
	c.cpus = cpus;
	c.physical_memory = memory;
	return c;
}

inline std::size_t stride_for(std::size_t chunk_size) {
	return (8 + chunk_size + 63) & ~std::size_t{63};
}

inline std::size_t size_for(unsigned ncq, unsigned nsq, std::size_t chunk_size) {
	return (64 + (ncq + nsq) * stride_for(chunk_size) + kPage - 1) & ~(kPage - 1);
}

inline int load(const int *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
inline void store(int *p, int v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

// Machine::run() from a host thread that is not attached: with no fiber alive it returns at
// once with the current counters, so an attached test can read them mid-test.
inline helsim::Counters counters_now(helsim::Machine &machine) {
	helsim::RunReport report;
	std::thread t{[&] { report = machine.run(); }};
	t.join();
	return report.counters;
}

using helsim::test::expect_clean;

inline HelError create(uint32_t flags, unsigned ncq, std::size_t cs, unsigned nsq, HelHandle *h) {
	HelQueueParameters params{flags, ncq, cs, nsq};
	return helCreateQueue(&params, h);
}

inline constexpr uint32_t kRW = kHelMapProtRead | kHelMapProtWrite;

inline HelError map(HelHandle h, std::size_t size, std::uintptr_t offset = 0, uint32_t flags = kRW,
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
inline std::vector<Seen> read_chunk(const HelChunk *c) {
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

inline void append(std::vector<std::uintptr_t> &to, const HelChunk *c) {
	for (const Seen &s : read_chunk(c))
		to.push_back(s.context);
}

inline std::vector<std::uintptr_t> contexts(const HelChunk *c) {
	std::vector<std::uintptr_t> out;
	append(out, c);
	return out;
}

inline std::vector<std::uintptr_t> iota(std::uintptr_t n) {
	std::vector<std::uintptr_t> v(n);
	for (std::uintptr_t i = 0; i < n; ++i)
		v[i] = i;
	return v;
}

} // namespace helsim::queue_test
