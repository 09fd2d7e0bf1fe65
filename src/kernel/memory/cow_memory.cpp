// Copy-on-write memory and its entry points helCopyOnWrite and SQ ForkMemory.
#include "kernel/memory/cow_memory.hpp"

#include <cstring>

#include "kernel/core/kernel.hpp"
#include "kernel/core/syscall_args.hpp"
#include "kernel/ipc/queue.hpp"
#include "kernel/memory/memory_syscalls.hpp"

namespace helsim::kernel {

namespace {
constexpr std::size_t kPage = sim::kPageSize;
constexpr sim::PhysicalAddr kNoFrame = ~sim::PhysicalAddr{0};
} // namespace

// Frozen by a fork: never written again, so readers need no lock once they hold the layer.
struct CopyOnWriteMemory::Layer {
	explicit Layer(sim::PhysicalMemory &memory) : memory{memory} {}
	Layer(const Layer &) = delete;
	Layer &operator=(const Layer &) = delete;
	~Layer() {
		for (auto &[index, frame] : frames)
			memory.free(frame, kPage);
	}

	sim::PhysicalMemory &memory;
	std::unordered_map<std::size_t, sim::PhysicalAddr> frames;
};

// What never-written pages of zero memory show: one frame per family of forks, allocated by
// the first read, so reads cost no memory and still fault writes into a copy.
struct CopyOnWriteMemory::ZeroFrame {
	explicit ZeroFrame(sim::PhysicalMemory &memory) : memory{memory} {}
	ZeroFrame(const ZeroFrame &) = delete;
	ZeroFrame &operator=(const ZeroFrame &) = delete;
	~ZeroFrame() {
		if (sim::PhysicalAddr f = frame.load(std::memory_order_relaxed); f != kNoFrame)
			memory.free(f, kPage);
	}

	std::optional<sim::PhysicalAddr> get() const {
		sim::PhysicalAddr f = frame.load(std::memory_order_acquire);
		if (f == kNoFrame)
			return std::nullopt;
		return f;
	}
	std::optional<sim::PhysicalAddr> get_or_allocate() {
		if (auto f = get())
			return f;
		std::lock_guard lock{mutex};
		if (auto f = get())
			return f;
		auto fresh = memory.allocate(kPage); // zeroed
		if (fresh)
			frame.store(*fresh, std::memory_order_release);
		return fresh;
	}

	sim::PhysicalMemory &memory;
	std::mutex mutex;
	std::atomic<sim::PhysicalAddr> frame{kNoFrame};
};

CopyOnWriteMemory::CopyOnWriteMemory(Kernel &kernel, Ref<MemoryView> source, std::size_t offset,
		std::size_t size, std::shared_ptr<ZeroFrame> zero)
: MemoryView{kernel}, source_{std::move(source)},
  source_offset_{offset}, size_{size}, zero_{std::move(zero)} {}

Ref<CopyOnWriteMemory> CopyOnWriteMemory::create(Kernel &kernel, Ref<MemoryView> source,
		std::size_t offset, std::size_t size) {
	std::shared_ptr<ZeroFrame> zero;
	if (!source)
		zero = std::make_shared<ZeroFrame>(kernel.host().physical_memory());
	auto memory = make_object<CopyOnWriteMemory>(kernel, std::move(source), offset, size,
			std::move(zero));
	if (memory->source_)
		memory->source_->add_observer(*memory);
	return memory;
}

CopyOnWriteMemory::~CopyOnWriteMemory() {
	if (source_)
		source_->remove_observer(*this);
	sim::PhysicalMemory &memory = kernel().host().physical_memory();
	for (auto &[index, frame] : private_)
		memory.free(frame, kPage);
}

void CopyOnWriteMemory::for_each_reference(const std::function<void(Object &)> &f) {
	if (source_)
		f(*source_);
}

std::optional<sim::PhysicalAddr> CopyOnWriteMemory::shared_frame(std::size_t index,
		std::shared_ptr<const Layer> *layer) const {
	for (const auto &l : shared_) {
		if (auto it = l->frames.find(index); it != l->frames.end()) {
			if (layer)
				*layer = l;
			return it->second;
		}
	}
	return std::nullopt;
}

std::optional<sim::PhysicalAddr> CopyOnWriteMemory::peek(std::size_t offset, unsigned flags) {
	if (offset >= size_)
		return std::nullopt;
	std::size_t index = offset / kPage;
	{
		std::lock_guard lock{mutex_};
		// Only private frames may be written (and not while a fork shares them out);
		// anything else is copied first.
		if (auto it = private_.find(index); it != private_.end()) {
			if ((flags & kFetchMutable) && forking_)
				return std::nullopt;
			return it->second;
		}
		if ((flags & kFetchMutable) || copying_.count(index))
			return std::nullopt;
		if (auto frame = shared_frame(index))
			return frame;
		if (!source_)
			return zero_->get();
	}
	// Unlocked: a copy that starts now evicts the caller's mapping after it installed this
	// frame (spaces peek and install under their own lock, which eviction takes).
	return source_->peek(source_offset_ + offset, flags);
}

HelError CopyOnWriteMemory::touch(std::size_t offset, unsigned flags, TouchWaiter &waiter) {
	if (offset >= size_)
		return kHelErrFault;
	std::size_t index = offset / kPage;
	if (flags & kFetchMutable)
		return copy_page(index, waiter);
	{
		std::lock_guard lock{mutex_};
		if (private_.count(index))
			return kHelErrNone;
		if (copying_.count(index)) {
			// peek() shows nothing until the copy is published; wait for it.
			waiter.next_waiter = std::exchange(waiters_, &waiter);
			return kTouchPending;
		}
		if (shared_frame(index))
			return kHelErrNone;
		if (!source_)
			return zero_->get_or_allocate() ? kHelErrNone : kHelErrNoMemory;
	}
	return source_->touch(source_offset_ + offset, flags, waiter);
}

HelError CopyOnWriteMemory::copy_page(std::size_t index, TouchWaiter &waiter) {
	std::shared_ptr<const Layer> layer; // keeps the frame we copy from alive
	std::optional<sim::PhysicalAddr> from;
	{
		std::lock_guard lock{mutex_};
		if (forking_ || copying_.count(index)) {
			waiter.next_waiter = std::exchange(waiters_, &waiter);
			return kTouchPending;
		}
		if (private_.count(index))
			return kHelErrNone;
		from = shared_frame(index, &layer);
		copying_.insert(index);
	}
	sim::PhysicalMemory &memory = kernel().host().physical_memory();
	auto frame = memory.allocate(kPage); // zeroed: a copy of zero memory is done already
	HelError error = frame ? kHelErrNone : kHelErrNoMemory;
	if (frame && from) {
		std::memcpy(memory.direct(*frame), memory.direct(*from), kPage);
	} else if (frame && source_) {
		std::size_t done = 0;
		error = copy_view(*source_, source_offset_ + index * kPage, memory.direct(*frame), kPage,
				false, done, waiter);
	}
	if (error != kHelErrNone) {
		// Including kTouchPending: the source fires `waiter` once its page is there, and the
		// caller then starts over.
		if (frame)
			memory.free(*frame, kPage);
		finish_copy(index, std::nullopt);
		return error;
	}
	// Mappings may show the frame read so far; they must drop it before the copy replaces it.
	evict_range(index * kPage, kPage);
	finish_copy(index, frame);
	return kHelErrNone;
}

void CopyOnWriteMemory::finish_copy(std::size_t index, std::optional<sim::PhysicalAddr> frame) {
	TouchWaiter *waiters;
	{
		std::lock_guard lock{mutex_};
		if (frame)
			private_.emplace(index, *frame);
		copying_.erase(index);
		waiters = std::exchange(waiters_, nullptr);
	}
	wake(waiters);
}

void CopyOnWriteMemory::wake(TouchWaiter *waiters) {
	// Every waiter looks again: its page may still be busy (then it waits anew), or a copy
	// failed and its own touch reports why.
	while (waiters) {
		TouchWaiter *next = waiters->next_waiter;
		waiters->touched(kHelErrNone);
		waiters = next;
	}
}

void CopyOnWriteMemory::pin(std::size_t offset, std::size_t size) {
	std::lock_guard lock{mutex_};
	for (std::size_t at = offset & ~(kPage - 1); at < offset + size; at += kPage)
		++pins_[at / kPage];
}

void CopyOnWriteMemory::unpin(std::size_t offset, std::size_t size) {
	std::lock_guard lock{mutex_};
	for (std::size_t at = offset & ~(kPage - 1); at < offset + size; at += kPage) {
		auto it = pins_.find(at / kPage);
		if (it != pins_.end() && --it->second == 0)
			pins_.erase(it);
	}
}

HelError CopyOnWriteMemory::fork(Ref<MemoryView> &out) {
	// Made before this view starts forking: a failed allocation (an exception) must leave it
	// as it was, not with its faults waiting for a fork that never ends.
	auto forked = make_object<CopyOnWriteMemory>(kernel(), source_, source_offset_, size_, zero_);
	std::lock_guard serial{fork_mutex_};
	{
		std::lock_guard lock{mutex_};
		forking_ = true;
	}
	// The private frames are about to be shared: every mapping that may write one must drop
	// it first, or a write could reach the fork (or a copy miss it). Until the freeze below,
	// faults map private frames read-only and writes wait.
	evict_range(0, size_);
	sim::PhysicalMemory &memory = kernel().host().physical_memory();
	HelError error = kHelErrNone;
	TouchWaiter *waiters;
	{
		std::lock_guard lock{mutex_};
		// A pinned page keeps its frame here (DMA may target it), so the fork gets a copy
		// now instead of sharing it. All copies first: running out of memory must leave
		// this view as it was.
		std::vector<std::pair<std::size_t, sim::PhysicalAddr>> copies;
		for (auto &[index, count] : pins_) {
			auto it = private_.find(index);
			if (it == private_.end())
				continue;
			auto frame = memory.allocate(kPage);
			if (!frame) {
				error = kHelErrNoMemory;
				break;
			}
			std::memcpy(memory.direct(*frame), memory.direct(it->second), kPage);
			copies.emplace_back(index, *frame);
		}
		if (error == kHelErrNone) {
			auto layer = std::make_shared<Layer>(memory);
			for (auto it = private_.begin(); it != private_.end();) {
				if (pins_.count(it->first)) {
					++it;
					continue;
				}
				layer->frames.emplace(it->first, it->second);
				it = private_.erase(it);
			}
			Chain chain;
			chain.reserve(shared_.size() + 1);
			if (!layer->frames.empty())
				chain.push_back(std::move(layer));
			chain.insert(chain.end(), shared_.begin(), shared_.end());
			shared_ = chain;
			forked->shared_ = std::move(chain);
			forked->private_.insert(copies.begin(), copies.end());
		} else {
			for (auto &[index, frame] : copies)
				memory.free(frame, kPage);
		}
		forking_ = false;
		waiters = std::exchange(waiters_, nullptr);
	}
	wake(waiters);
	if (error != kHelErrNone)
		return error;
	if (source_)
		source_->add_observer(*forked);
	out = std::move(forked);
	return kHelErrNone;
}

void CopyOnWriteMemory::evict(MemoryView &, std::size_t offset, std::size_t size) {
	std::size_t lo = std::max(offset, source_offset_);
	std::size_t hi = std::min(offset + size, source_offset_ + size_);
	if (lo < hi)
		evict_range(lo - source_offset_, hi - lo);
}

// ---------------------------------------------------------------- entry points

HelError decode_copy_on_write(Thread &self, const HelWord *args, CopyOnWriteRequest &out) {
	auto handle = arg<HelHandle>(args, 0);
	out.offset = arg<std::uintptr_t>(args, 1);
	out.size = arg<std::size_t>(args, 2);
	// thor asserts these; helsim refuses them as helAllocateMemory does.
	if (!out.size || !page_aligned(out.offset) || !page_aligned(out.size) ||
			out.offset + out.size < out.offset)
		return kHelErrIllegalArgs;
	out.rights = kCowDefaultRights;
	if (handle == kHelZeroMemory)
		return kHelErrNone;
	// thor: a negative handle other than kHelZeroMemory is no special memory view.
	if (handle < 0)
		return kHelErrBadDescriptor;
	auto view = resolve_view(self, handle, kHelRightRead | kHelRightAssign);
	if (!view)
		return view.error;
	if (out.offset + out.size > view.object->size())
		return kHelErrBufferTooSmall;
	// A private copy must not turn memory one may not execute into memory one may.
	if (!(view.rights & kHelRightExecute))
		out.rights &= ~std::uint32_t{kHelRightExecute};
	out.source = std::move(view.object);
	return kHelErrNone;
}

HelError copy_on_write(Thread &self, CopyOnWriteRequest &request, HelWord *outs) {
	if (request.size > CopyOnWriteMemory::kMaxSize)
		return kHelErrNoMemory;
	return attach_new(self,
			CopyOnWriteMemory::create(self.kernel(), std::move(request.source), request.offset,
					request.size),
			request.rights, outs);
}

HelError sq_fork_memory(Thread &self, IpcQueue &queue, std::uintptr_t context,
		const HelSqForkMemory &, Lookup<MemoryView> &view) {
	// Any other view fails with kHelErrIllegalObject (in its completion), whatever its
	// rights: only copy-on-write views can have Derive to begin with.
	if (dynamic_cast<CopyOnWriteMemory *>(view.object.get()) && !(view.rights & kHelRightDerive))
		return kHelErrBadRights;
	// Counted as submitted once the fork (which allocates) is done.
	Ref<MemoryView> forked;
	HelHandleResult result{view.object->fork(forked), 0, kHelNullHandle};
	if (result.error == kHelErrNone)
		result.error = self.universe().attach(std::move(forked), view.rights, result.handle);
	self.note_submitted();
	QueueSource source{&result, sizeof(result)};
	queue.post({&source, 1}, context, true);
	return kHelErrNone;
}

} // namespace helsim::kernel
