#include "kernel/core/kernel.hpp"

#include <cstdio>
#include <new>
#include <stdexcept>

#include <fmt/core.h>

#include "kernel/core/async_operation.hpp"
#include "kernel/core/syscalls.hpp"
#include "kernel/core/universe.hpp"
#include "kernel/devices/device_registry.hpp"
#include "kernel/devices/irq.hpp"
#include "kernel/ipc/queue.hpp"
#include "kernel/threads/thread.hpp"

namespace helsim::kernel {

namespace {
// Room for every mapping of every space; reserved PROT_NONE, so it costs no memory.
constexpr std::size_t kWindowSize = std::size_t{16} << 30;
} // namespace

Object::Object(Kernel &kernel, ObjectKind kind)
: kernel_{kernel}, kind_{kind}, rights_mask_{kernel.kinds()[kind].rights} {
	// As a failed allocation of the object would: kernel code creates objects before it
	// commits an operation (see without_allocation_exceptions).
	if (kernel.fail_at(FaultPoint::object_creation)) [[unlikely]]
		throw std::bad_alloc{};
}

const char *Object::kind_name() const { return kernel_.kinds()[kind_].name.c_str(); }

int Object::descriptor_type() const { return kernel_.kinds()[kind_].descriptor_type; }

void Object::retire() {
	kernel_.unregister_object(*this);
	last_reference_dropped();
}

Kernel::Kernel(const MachineConfig &config, sim::Host &host)
: config_{config}, host_{host}, window_{kWindowSize}, random_{config.seed},
  extension_operations_{std::make_unique<ExtensionOperations>()},
  irqs_{std::make_unique<IrqController>()}, devices_{std::make_unique<DeviceRegistry>()} {
	register_builtin_kinds(kinds_);
	register_builtin_calls(calls_);
	for (std::size_t p = 0; p < kFaultPoints; ++p)
		fail_at_counter(static_cast<FaultPoint>(p)).arm(config.inject.fail_at[p]);
}

Kernel::~Kernel() = default;

Ref<AddressSpace> Kernel::create_space() { return make_object<AddressSpace>(*this, window_); }

void Kernel::register_object(Object &object) {
	std::lock_guard lock{registry_mutex_};
	++created_[static_cast<std::size_t>(object.kind())]; // under the lock the registry takes anyway
	object.registry_next = registry_head_;
	if (registry_head_)
		registry_head_->registry_prev = &object;
	registry_head_ = &object;
}

void Kernel::unregister_object(Object &object) {
	std::lock_guard lock{registry_mutex_};
	(object.registry_prev ? object.registry_prev->registry_next : registry_head_) =
			object.registry_next;
	if (object.registry_next)
		object.registry_next->registry_prev = object.registry_prev;
}

std::vector<LeakedObject> Kernel::live_objects(const std::set<const void *> &except) const {
	std::lock_guard lock{registry_mutex_};
	std::vector<LeakedObject> result;
	for (Object *o = registry_head_; o; o = o->registry_next)
		if (!except.contains(o))
			result.push_back({o->kind_name(), o->describe(), o->refs()});
	return result;
}

std::vector<ObjectCount> Kernel::object_counts() const {
	std::array<std::uint64_t, kMaxObjectKinds> live{};
	std::lock_guard lock{registry_mutex_};
	for (Object *o = registry_head_; o; o = o->registry_next)
		++live[static_cast<std::size_t>(o->kind())];
	std::vector<ObjectCount> result;
	for (std::size_t i = 0; i < kinds_.size(); ++i)
		if (created_[i])
			result.push_back({kinds_[static_cast<ObjectKind>(i)].name, created_[i], live[i]});
	return result;
}

void Kernel::clear_universes() {
	for (;;) {
		Ref<Object> victim;
		{
			std::lock_guard lock{registry_mutex_};
			for (Object *o = registry_head_; o; o = o->registry_next) {
				if (kinds_[o->kind()].teardown == Teardown::close_handles &&
						o->descriptors_held() > 0 && o->try_ref()) {
					victim = Ref<Object>::adopt(o);
					break;
				}
			}
		}
		if (!victim)
			return;
		victim->close_handles();
	}
}

std::vector<Ref<Object>> Kernel::live_object_refs() const {
	std::vector<Ref<Object>> live;
	std::lock_guard lock{registry_mutex_};
	for (Object *o = registry_head_; o; o = o->registry_next)
		if (o->try_ref())
			live.push_back(Ref<Object>::adopt(o));
	return live;
}

void Kernel::abandon_objects() {
	extension_operations_->abandon_all();
	for (auto &o : live_object_refs())
		if (kinds_[o->kind()].teardown == Teardown::abandon)
			o->abandon();
}

void Kernel::register_thread(Thread &thread) {
	std::lock_guard lock{threads_mutex_};
	thread.kernel_prev_ = last_thread_;
	thread.kernel_next_ = nullptr;
	(last_thread_ ? last_thread_->kernel_next_ : first_thread_) = &thread;
	last_thread_ = &thread;
}

void Kernel::unregister_thread(Thread &thread) {
	std::lock_guard lock{threads_mutex_};
	(thread.kernel_prev_ ? thread.kernel_prev_->kernel_next_ : first_thread_) = thread.kernel_next_;
	(thread.kernel_next_ ? thread.kernel_next_->kernel_prev_ : last_thread_) = thread.kernel_prev_;
}

std::vector<Ref<Thread>> Kernel::threads() {
	std::lock_guard lock{threads_mutex_};
	std::vector<Ref<Thread>> result;
	for (Thread *t = first_thread_; t; t = t->kernel_next_)
		if (t->try_ref()) // a thread being destroyed is still listed until its destructor ends
			result.push_back(Ref<Thread>::adopt(t));
	return result;
}

void Kernel::record_ended(ThreadReport report) {
	std::lock_guard lock{threads_mutex_};
	ended_.push_back(std::move(report));
}

std::vector<ThreadReport> Kernel::ended_threads() const {
	std::lock_guard lock{threads_mutex_};
	return ended_;
}

void Kernel::log(const LogRecord &record) {
	std::lock_guard lock{log_mutex_};
	if (config_.log_sink)
		config_.log_sink(record);
	else
		fmt::print(stderr, "[{}] {}\n", record.thread, record.message);
}

bool Kernel::inject(std::uint32_t ppm) {
	if (!ppm)
		return false;
	// The n-th decision is a hash of (seed, n): no lock, and the same sequence for the same
	// order of calls, which deterministic mode fixes.
	std::uint64_t z = config_.seed +
			0x9E3779B97F4A7C15ull * (inject_draws_.fetch_add(1, std::memory_order_relaxed) + 1);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return (z ^ (z >> 31)) % 1'000'000 < ppm;
}

sim::FailAt &Kernel::fail_at_counter(FaultPoint point) {
	if (point == FaultPoint::frame_allocation)
		return host_.physical_memory().fail_at();
	return fail_at_[static_cast<std::size_t>(point)];
}

void Kernel::random_bytes(void *out, std::size_t n) {
	std::lock_guard lock{random_mutex_};
	auto *bytes = static_cast<unsigned char *>(out);
	for (std::size_t i = 0; i < n; ++i)
		bytes[i] = static_cast<unsigned char>(random_());
}

Kernel::Accounting Kernel::accounting() const {
	std::vector<Ref<IpcQueue>> queues;
	{
		std::lock_guard lock{registry_mutex_};
		for (Object *o = registry_head_; o; o = o->registry_next)
			if (o->kind() == ObjectKind::queue && o->try_ref())
				queues.push_back(Ref<IpcQueue>::adopt(static_cast<IpcQueue *>(o)));
	}
	Accounting total;
	{
		std::lock_guard lock{counts_mutex_};
		total = retired_accounting_;
	}
	for (auto &q : queues) {
		auto a = q->accounting();
		total.completed += a.completed;
		total.posted += a.posted;
	}
	std::lock_guard lock{threads_mutex_};
	for (Thread *t = first_thread_; t; t = t->kernel_next_)
		total.submitted += t->operations_submitted.get();
	return total;
}

void Kernel::add_syscall_counts(const std::array<std::uint64_t, kSyscallSlots> &counts) {
	std::lock_guard lock{counts_mutex_};
	for (std::size_t i = 0; i < kSyscallSlots; ++i)
		retired_counts_[i] += counts[i];
}

std::array<std::uint64_t, kSyscallSlots> Kernel::syscall_counts() const {
	std::array<std::uint64_t, kSyscallSlots> total;
	{
		std::lock_guard lock{counts_mutex_};
		total = retired_counts_;
	}
	std::lock_guard lock{threads_mutex_};
	for (Thread *t = first_thread_; t; t = t->kernel_next_)
		for (std::size_t i = 0; i < kSyscallSlots; ++i)
			total[i] += t->syscall_counts[i].get();
	return total;
}

} // namespace helsim::kernel
