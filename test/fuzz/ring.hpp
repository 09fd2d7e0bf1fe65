// The fuzzer's own view of a queue's rings (the protocol of include/helsim/dispatcher.hpp,
// which cannot serve here: it throws on errors, takes its parameters from the stack, which
// strict memory refuses, and trusts the ring). The program under test may map over, unmap or
// write into the ring's memory, so every index and length read back is checked against the
// mapping; a ring found inconsistent is abandoned, not followed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include <helsim/hel.h>

namespace helsim::fuzz {

class Ring {
public:
	static constexpr unsigned kCqChunks = 8;
	static constexpr unsigned kSqChunks = 4;
	static constexpr std::size_t kChunkSize = 4096;

	// Creates the queue and maps it; `params` is caller-space memory (strict memory mode)
	// for the HelQueueParameters. False if either call failed.
	bool create(HelQueueParameters *params) {
		*params = HelQueueParameters{0, kCqChunks, kChunkSize, kSqChunks};
		if (helCreateQueue(params, &handle_) != kHelErrNone)
			return false;
		stride_ = (sizeof(HelChunk) + kChunkSize + 63) & ~std::size_t{63};
		size_ = (64 + (kCqChunks + kSqChunks) * stride_ + 4095) & ~std::size_t{4095};
		void *mapping = nullptr;
		if (helMapMemory(handle_, kHelNullHandle, nullptr, 0, size_,
					kHelMapProtRead | kHelMapProtWrite, &mapping) != kHelErrNone)
			return false;
		queue_ = static_cast<HelQueue *>(mapping);
		broken_ = false;
		for (unsigned i = 0; i < kCqChunks; ++i)
			reset(static_cast<int>(i));
		__atomic_store_n(&queue_->cqFirst, 0 | kHelNextPresent, __ATOMIC_RELEASE);
		tail_ = 0;
		for (unsigned i = 1; i < kCqChunks; ++i)
			link(static_cast<int>(i));
		notify(kHelKernelNotifySupplyCqChunks);
		sq_chunk_ = __atomic_load_n(&queue_->sqFirst, __ATOMIC_ACQUIRE) & ~kHelNextPresent;
		if (sq_chunk_ < static_cast<int>(kCqChunks) ||
				sq_chunk_ >= static_cast<int>(kCqChunks + kSqChunks))
			broken_ = true;
		return true;
	}

	HelHandle handle() const { return handle_; }
	// Whether the ring was found inconsistent and abandoned: completions posted to the queue
	// since are never read, and may never be posted at all (see drain()).
	bool broken() const { return broken_; }

	// Appends one SQ element and drives the queue. False if the SQ has no room the kernel
	// linked (the element is then not submitted).
	bool submit(std::uint32_t opcode, std::uintptr_t context, std::span<const std::byte> payload) {
		std::size_t need = sizeof(HelElement) + payload.size();
		if (broken_ || need > kChunkSize)
			return false;
		if (sq_progress_ + need > kChunkSize && !next_sq_chunk())
			return false;
		char *out = chunk(sq_chunk_)->buffer + sq_progress_;
		HelElement element{static_cast<unsigned>(payload.size()), opcode,
				reinterpret_cast<void *>(context)};
		std::memcpy(out, &element, sizeof(element));
		if (!payload.empty())
			std::memcpy(out + sizeof(element), payload.data(), payload.size());
		sq_progress_ += need;
		__atomic_store_n(&chunk(sq_chunk_)->progressFutex, static_cast<int>(sq_progress_),
				__ATOMIC_RELEASE);
		__atomic_fetch_or(&queue_->kernelNotify, kHelKernelNotifySqProgress, __ATOMIC_RELEASE);
		helDriveQueue(handle_, 0, 0);
		return true;
	}

	// Calls `f(context, payload)` for each completion posted since the last call.
	template <typename F>
	void drain(F &&f) {
		// The kernel only reads cqFirst, and create() set it once: another value means the
		// program wrote over the header. Until the kernel has taken the first chunk from it,
		// completions then wait for a chunk that seems never supplied, unseen by the checks
		// on the chunks below.
		if (!broken_ &&
				__atomic_load_n(&queue_->cqFirst, __ATOMIC_ACQUIRE) != (0 | kHelNextPresent))
			broken_ = true;
		while (!broken_) {
			HelChunk *c = chunk(retrieve_);
			int progress = __atomic_load_n(&c->progressFutex, __ATOMIC_ACQUIRE);
			auto end = static_cast<std::size_t>(progress & kHelProgressMask);
			if (end > kChunkSize || end < last_progress_) {
				broken_ = true;
				return;
			}
			if (end != last_progress_) {
				HelElement header;
				if (last_progress_ + sizeof(header) > end) {
					broken_ = true;
					return;
				}
				std::memcpy(&header, c->buffer + last_progress_, sizeof(header));
				std::size_t length = header.length;
				if (length > end - last_progress_ - sizeof(header)) {
					broken_ = true;
					return;
				}
				f(reinterpret_cast<std::uintptr_t>(header.context),
						std::span<const std::byte>{reinterpret_cast<const std::byte *>(c->buffer +
														   last_progress_ + sizeof(header)),
								length});
				last_progress_ += sizeof(header) + length;
				continue;
			}
			if (!(progress & kHelProgressDone))
				return;
			int next = __atomic_load_n(&c->next, __ATOMIC_ACQUIRE);
			int index = next & ~kHelNextPresent;
			if (!(next & kHelNextPresent) || index < 0 || index >= static_cast<int>(kCqChunks)) {
				broken_ = true;
				return;
			}
			int done = retrieve_;
			retrieve_ = index;
			last_progress_ = 0;
			reset(done);
			link(done);
			notify(kHelKernelNotifySupplyCqChunks);
		}
	}

private:
	HelChunk *chunk(int index) const {
		return reinterpret_cast<HelChunk *>(
				reinterpret_cast<char *>(queue_) + 64 + static_cast<std::size_t>(index) * stride_);
	}
	void reset(int index) {
		chunk(index)->next = 0;
		chunk(index)->progressFutex = 0;
	}
	void link(int index) {
		__atomic_store_n(&chunk(tail_)->next, index | kHelNextPresent, __ATOMIC_RELEASE);
		tail_ = index;
	}
	void notify(int bit) {
		__atomic_fetch_or(&queue_->kernelNotify, bit, __ATOMIC_RELEASE);
		helDriveQueue(handle_, 0, 0);
	}
	bool next_sq_chunk() {
		int next = __atomic_load_n(&chunk(sq_chunk_)->next, __ATOMIC_ACQUIRE);
		if (!(next & kHelNextPresent)) {
			helDriveQueue(handle_, 0, 0);
			next = __atomic_load_n(&chunk(sq_chunk_)->next, __ATOMIC_ACQUIRE);
		}
		int index = next & ~kHelNextPresent;
		if (!(next & kHelNextPresent))
			return false;
		if (index < static_cast<int>(kCqChunks) ||
				index >= static_cast<int>(kCqChunks + kSqChunks)) {
			broken_ = true;
			return false;
		}
		__atomic_store_n(&chunk(sq_chunk_)->progressFutex,
				static_cast<int>(sq_progress_) | kHelProgressDone, __ATOMIC_RELEASE);
		__atomic_fetch_or(&queue_->kernelNotify, kHelKernelNotifySqProgress, __ATOMIC_RELEASE);
		sq_chunk_ = index;
		sq_progress_ = 0;
		return true;
	}

	HelHandle handle_ = kHelNullHandle;
	HelQueue *queue_ = nullptr;
	std::size_t stride_ = 0;
	std::size_t size_ = 0;
	int retrieve_ = 0;
	std::size_t last_progress_ = 0;
	int tail_ = 0;
	int sq_chunk_ = 0;
	std::size_t sq_progress_ = 0;
	bool broken_ = true; // until create() succeeded
};

} // namespace helsim::fuzz
