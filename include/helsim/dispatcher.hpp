// A completion dispatcher over the hel queue, as Managarm's helix Dispatcher does it: maps
// the queue, supplies and recycles CQ chunks, pushes SQ elements and reads completions,
// waiting through helDriveQueue. Header-only; it uses nothing but hel.h. Single-threaded:
// one Dispatcher belongs to one simulated thread at a time.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <helsim/hel.h>

namespace helsim {

// Thrown by the dispatcher when a hel call it depends on fails.
class HelException : public std::runtime_error {
public:
	HelException(const char *what, HelError error)
	: std::runtime_error{std::string{what} + " failed with HelError " + std::to_string(error)},
	  error_{error} {}
	HelError error() const { return error_; }

private:
	HelError error_;
};

struct QueueConfig {
	unsigned cq_chunks = 8;
	unsigned sq_chunks = 8;
	std::size_t chunk_size = 4096;
};

class Dispatcher;

// One completion element. Holding it keeps its chunk from being recycled (RecvInline data
// points into the chunk), exactly as helix's ElementHandle does.
class Element {
public:
	Element() = default;
	Element(const Element &) = delete;
	Element &operator=(const Element &) = delete;
	Element(Element &&other) noexcept
	: dispatcher_{std::exchange(other.dispatcher_, nullptr)},
	  chunk_{std::exchange(other.chunk_, -1)}, context_{other.context_}, payload_{other.payload_} {}
	Element &operator=(Element &&other) noexcept;
	~Element() { release(); }

	std::uintptr_t context() const { return context_; }
	std::span<const std::byte> payload() const { return payload_; }
	// The HelError every result struct starts with.
	HelError error() const {
		HelError e = kHelErrNone;
		// Every result struct holds the whole word: a copy of constant size, no memcpy call.
		if (payload_.size() >= sizeof(e)) [[likely]]
			std::memcpy(&e, payload_.data(), sizeof(e));
		else
			std::memcpy(&e, payload_.data(), payload_.size());
		return e;
	}
	// The payload as a result struct (the caller knows which one the operation produces).
	template <typename T>
	T as(std::size_t offset = 0) const {
		T value{};
		if (offset + sizeof(T) <= payload_.size())
			std::memcpy(&value, payload_.data() + offset, sizeof(T));
		return value;
	}
	void release();

private:
	friend class Dispatcher;
	Dispatcher *dispatcher_ = nullptr;
	int chunk_ = -1;
	std::uintptr_t context_ = 0;
	std::span<const std::byte> payload_;
};

class Dispatcher {
public:
	explicit Dispatcher(QueueConfig config = {}) : config_{config} {
		HelQueueParameters params{0, config.cq_chunks, config.chunk_size, config.sq_chunks};
		check(helCreateQueue(&params, &handle_), "helCreateQueue");
		stride_ = (sizeof(HelChunk) + config.chunk_size + 63) & ~std::size_t{63};
		size_ = (64 + (config.cq_chunks + config.sq_chunks) * stride_ + 4095) & ~std::size_t{4095};
		void *mapping = nullptr;
		if (HelError e = helMapMemory(handle_, kHelNullHandle, nullptr, 0, size_,
					kHelMapProtRead | kHelMapProtWrite, &mapping)) {
			helCloseDescriptor(kHelThisUniverse, handle_); // no destructor runs after a throw
			throw HelException{"helMapMemory", e};
		}
		queue_ = static_cast<HelQueue *>(mapping);
		refs_.assign(config.cq_chunks, 0);
		// Every CQ chunk starts reset and supplied: chunk 0 first, the others linked behind it.
		for (unsigned i = 0; i < config.cq_chunks; ++i)
			reset(static_cast<int>(i));
		__atomic_store_n(&queue_->cqFirst, 0 | kHelNextPresent, __ATOMIC_RELEASE);
		tail_ = 0;
		for (unsigned i = 1; i < config.cq_chunks; ++i)
			link(static_cast<int>(i));
		check(notify_kernel(kHelKernelNotifySupplyCqChunks), "helDriveQueue");
		if (config.sq_chunks)
			sq_chunk_ = __atomic_load_n(&queue_->sqFirst, __ATOMIC_ACQUIRE) & ~kHelNextPresent;
	}

	Dispatcher(const Dispatcher &) = delete;
	Dispatcher &operator=(const Dispatcher &) = delete;

	~Dispatcher() {
		helUnmapMemory(kHelNullHandle, queue_, size_);
		helCloseDescriptor(kHelThisUniverse, handle_);
	}

	HelHandle queue() const { return handle_; }
	HelQueue *shared() const { return queue_; }
	const QueueConfig &config() const { return config_; }

	// Appends an SQ element (no syscall; flush() or wait() hands it to the kernel).
	void submit(std::uint32_t opcode, std::uintptr_t context, std::span<const std::byte> payload) {
		std::size_t need = sizeof(HelElement) + payload.size();
		if (!config_.sq_chunks || sq_progress_ + need > config_.chunk_size) [[unlikely]]
			next_sq_chunk(need);
		HelChunk *current = chunk(sq_chunk_);
		char *out = current->buffer + sq_progress_;
		HelElement element{static_cast<unsigned>(payload.size()), opcode,
				reinterpret_cast<void *>(context)};
		std::memcpy(out, &element, sizeof(element));
		if (!payload.empty())
			std::memcpy(out + sizeof(element), payload.data(), payload.size());
		sq_progress_ += need;
		__atomic_store_n(&current->progressFutex, static_cast<int>(sq_progress_), __ATOMIC_RELEASE);
		notify_kernel_deferred(kHelKernelNotifySqProgress);
	}

	// The payload is the bytes of `payload` itself (a HelSq* request struct), not what it
	// points to: containers are refused at compile time.
	template <typename T>
	requires std::is_trivially_copyable_v<T>
	void submit(std::uint32_t opcode, std::uintptr_t context, const T &payload) {
		submit(opcode, context, std::as_bytes(std::span{&payload, 1}));
	}

	// Hands pending SQ elements to the kernel now.
	void flush() {
		throw_failed_drop();
		if (sq_dirty_) {
			sq_dirty_ = false;
			check(helDriveQueue(handle_, 0, 0), "helDriveQueue");
		}
	}

	// The next completion if one is there; no syscall.
	std::optional<Element> poll() {
		int progress = __atomic_load_n(&chunk(retrieve_)->progressFutex, __ATOMIC_ACQUIRE);
		if (static_cast<std::size_t>(progress & kHelProgressMask) != last_progress_)
			return take();
		if (!(progress & kHelProgressDone))
			return std::nullopt;
		return poll_next_chunk();
	}

	// Waits for the next completion. Returns nullopt if helAlertQueue or helInterruptThread
	// interrupted the wait.
	std::optional<Element> wait() {
		for (;;) {
			if (auto element = poll())
				return element;
			int seen = __atomic_fetch_and(&queue_->userNotify,
					~(kHelUserNotifyCqProgress | kHelUserNotifyAlert), __ATOMIC_ACQUIRE);
			if (seen & kHelUserNotifyAlert)
				return std::nullopt;
			if (auto element = poll())
				return element;
			throw_failed_drop();
			sq_dirty_ = false;
			HelError e = helDriveQueue(handle_, kHelDriveWait,
					~static_cast<uint32_t>(kHelUserNotifyCqProgress | kHelUserNotifyAlert));
			if (e == kHelErrCancelled)
				return std::nullopt; // helInterruptThread ended the wait
			check(e, "helDriveQueue");
		}
	}

	// Waits for the completion with this context, dropping nothing: other completions that
	// arrive first are handed to `other` in order.
	template <typename F>
	Element wait_for(std::uintptr_t context, F &&other) {
		for (;;) {
			auto element = wait();
			if (!element)
				continue;
			if (element->context() == context)
				return std::move(*element);
			other(std::move(*element));
		}
	}

	// A context no earlier call returned on this dispatcher (from 0x1000 up, below which
	// callers may number their own operations). Per dispatcher, not process-wide: one thread
	// owns a dispatcher, so the count needs no atomic and shares no cache line across CPUs.
	std::uintptr_t fresh_context() { return next_context_++; }

	// Number of CQ chunks currently held by live Elements (for tests of backpressure).
	unsigned held_chunks() const {
		unsigned n = 0;
		for (int r : refs_)
			n += r > 1;
		return n;
	}

private:
	friend class Element;

	static void check(HelError e, const char *what) {
		if (e != kHelErrNone)
			throw HelException{what, e};
	}

	HelChunk *chunk(int index) const {
		return reinterpret_cast<HelChunk *>(
				reinterpret_cast<char *>(queue_) + 64 + static_cast<std::size_t>(index) * stride_);
	}

	// submit() without room in the SQ chunk: the slow path, out of the inlined one.
	void next_sq_chunk(std::size_t need) {
		if (!config_.sq_chunks)
			throw std::logic_error("helsim::Dispatcher: the queue has no SQ chunks");
		if (need > config_.chunk_size)
			throw std::length_error("helsim::Dispatcher: SQ element larger than a chunk");
		if (sq_progress_ + need <= config_.chunk_size)
			return;
		// Move on only once the kernel has linked a next chunk, then retire this one.
		int next = __atomic_load_n(&chunk(sq_chunk_)->next, __ATOMIC_ACQUIRE);
		while (!(next & kHelNextPresent)) {
			__atomic_fetch_and(&queue_->userNotify, ~kHelUserNotifySupplySqChunks,
					__ATOMIC_ACQUIRE);
			next = __atomic_load_n(&chunk(sq_chunk_)->next, __ATOMIC_ACQUIRE);
			if (next & kHelNextPresent)
				break;
			check(helDriveQueue(handle_, 0, 0), "helDriveQueue");
			next = __atomic_load_n(&chunk(sq_chunk_)->next, __ATOMIC_ACQUIRE);
		}
		__atomic_store_n(&chunk(sq_chunk_)->progressFutex,
				static_cast<int>(sq_progress_) | kHelProgressDone, __ATOMIC_RELEASE);
		notify_kernel_deferred(kHelKernelNotifySqProgress);
		sq_chunk_ = next & ~kHelNextPresent;
		sq_progress_ = 0;
	}

	// poll() at the end of the chunk: the kernel retired it; continue in the one it linked next.
	// Out of line: inlined, its syscall (drop()'s drive) would give poll()'s common path a
	// stack frame.
	[[gnu::noinline]] std::optional<Element> poll_next_chunk() {
		for (;;) {
			int next = __atomic_load_n(&chunk(retrieve_)->next, __ATOMIC_ACQUIRE);
			int done = retrieve_;
			retrieve_ = next & ~kHelNextPresent;
			last_progress_ = 0;
			drop(done);
			int progress = __atomic_load_n(&chunk(retrieve_)->progressFutex, __ATOMIC_ACQUIRE);
			if (static_cast<std::size_t>(progress & kHelProgressMask) != last_progress_)
				return take();
			if (!(progress & kHelProgressDone))
				return std::nullopt;
		}
	}

	Element take() {
		Element element;
		char *at = chunk(retrieve_)->buffer + last_progress_;
		HelElement header;
		std::memcpy(&header, at, sizeof(header));
		element.dispatcher_ = this;
		element.chunk_ = retrieve_;
		element.context_ = reinterpret_cast<std::uintptr_t>(header.context);
		element.payload_ = {reinterpret_cast<const std::byte *>(at + sizeof(header)),
				header.length};
		last_progress_ += sizeof(header) + header.length;
		++refs_[static_cast<std::size_t>(retrieve_)];
		return element;
	}

	void reset(int index) {
		chunk(index)->next = 0;
		chunk(index)->progressFutex = 0;
		refs_[static_cast<std::size_t>(index)] = 1; // the dispatcher's own reference until Done
	}

	void link(int index) {
		__atomic_store_n(&chunk(tail_)->next, index | kHelNextPresent, __ATOMIC_RELEASE);
		tail_ = index;
	}

	// A chunk is recycled once the kernel is done with it and no Element points into it.
	// Also run by an Element's destructor and move assignment, which must not throw: the error
	// of a drive that fails here (the queue handle closed under live Elements) is kept for the
	// next flush() or wait() to throw.
	void drop(int index) noexcept {
		if (--refs_[static_cast<std::size_t>(index)] == 0) {
			reset(index);
			link(index);
			if (HelError e = notify_kernel(kHelKernelNotifySupplyCqChunks))
				failed_drop_ = e;
		}
	}

	void throw_failed_drop() {
		if (failed_drop_ != kHelErrNone) [[unlikely]]
			check(std::exchange(failed_drop_, kHelErrNone), "helDriveQueue");
	}

	// Sets `bit` and drives if it was clear: the drive clears it.
	HelError notify_kernel(int bit) noexcept {
		int old = __atomic_fetch_or(&queue_->kernelNotify, bit, __ATOMIC_RELEASE);
		return old & bit ? kHelErrNone : helDriveQueue(handle_, 0, 0);
	}

	// The SQ is driven later by this thread (flush() or wait()), which reads the chunk
	// progress itself; the bit only tells other drivers to look again. It stays set until a
	// drive clears it, so skip the locked RMW while it is still set.
	void notify_kernel_deferred(int bit) {
		if (!(__atomic_load_n(&queue_->kernelNotify, __ATOMIC_RELAXED) & bit))
			__atomic_fetch_or(&queue_->kernelNotify, bit, __ATOMIC_RELEASE);
		sq_dirty_ = true;
	}

	QueueConfig config_;
	HelHandle handle_ = kHelNullHandle;
	HelQueue *queue_ = nullptr;
	std::size_t stride_ = 0;
	std::size_t size_ = 0;

	std::vector<int> refs_;
	int retrieve_ = 0;
	std::size_t last_progress_ = 0;
	int tail_ = 0;

	int sq_chunk_ = 0;
	std::size_t sq_progress_ = 0;
	bool sq_dirty_ = false;
	HelError failed_drop_ = kHelErrNone;
	std::uintptr_t next_context_ = 0x1000;
};

inline Element &Element::operator=(Element &&other) noexcept {
	if (this != &other) {
		release();
		dispatcher_ = std::exchange(other.dispatcher_, nullptr);
		chunk_ = std::exchange(other.chunk_, -1);
		context_ = other.context_;
		payload_ = other.payload_;
	}
	return *this;
}

// GCC 12 at -O2 reports the members of an Element inside a disengaged std::optional as
// "maybe uninitialized" when the optional is destroyed; they are always initialised.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
inline void Element::release() {
	if (dispatcher_)
		std::exchange(dispatcher_, nullptr)->drop(chunk_);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

} // namespace helsim
