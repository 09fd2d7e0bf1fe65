// The stream's hot allocations — packets of up to four nodes, send data of up to
// kMaxBufferedSend bytes, the copy of a large send — recycled through a small cache per host
// thread (one per simulated CPU in threads mode), like a kernel's per-CPU slab, so that a warm
// exchange allocates nothing. A block goes to the cache of the host thread that frees it; each
// class keeps at most kCachedPerClass blocks, the rest go back to the heap. Cached blocks are
// poisoned for ASan, so a use after free is still caught.
#pragma once

#include <cstddef>
#include <new>

#include <sanitizer/asan_interface.h>

namespace helsim::kernel {

class StreamCache {
public:
	// The caller names a block's class and gives the same class and size back with it; a
	// class always has one size. kNoClass: straight from and to the heap.
	enum Class : std::size_t {
		kPacket1,
		kPacket2,
		kPacket3,
		kPacket4,
		kSendData,
		kTransfer,
		kClasses,
		kNoClass = kClasses
	};
	static constexpr std::size_t kCachedPerClass = 64;

	StreamCache(const StreamCache &) = delete;
	StreamCache &operator=(const StreamCache &) = delete;

	// nullptr when the heap has no memory left.
	static void *take(Class c, std::size_t bytes) {
		if (c != kNoClass && !gone)
			if (Blocks &blocks = instance().classes_[c]; blocks.count) {
				void *block = blocks.block[--blocks.count];
				ASAN_UNPOISON_MEMORY_REGION(block, bytes);
				return block;
			}
		return ::operator new(bytes, std::nothrow);
	}
	static void give(void *block, Class c, std::size_t bytes) {
		if (c != kNoClass && !gone)
			if (Blocks &blocks = instance().classes_[c]; blocks.count < kCachedPerClass) {
				blocks.bytes = bytes;
				ASAN_POISON_MEMORY_REGION(block, bytes);
				blocks.block[blocks.count++] = block;
				return;
			}
		::operator delete(block);
	}

private:
	StreamCache() = default;
	~StreamCache() {
		for (Blocks &blocks : classes_)
			for (std::size_t i = 0; i < blocks.count; ++i) {
				ASAN_UNPOISON_MEMORY_REGION(blocks.block[i], blocks.bytes);
				::operator delete(blocks.block[i]);
			}
		gone = true;
	}
	static StreamCache &instance() {
		thread_local StreamCache cache;
		return cache;
	}

	// Set when this host thread's cache is destroyed (thread exit): blocks freed later, by
	// another thread-local's or a static object's destructor, use the heap. A plain bool stays
	// readable until the thread's storage goes.
	static inline thread_local bool gone = false;

	struct Blocks {
		void *block[kCachedPerClass];
		std::size_t count = 0;
		std::size_t bytes = 0;
	};
	Blocks classes_[kClasses];
};

} // namespace helsim::kernel
