// One simulated kernel: the state every object and syscall shares. A Machine owns one.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <helsim/extension_kernel.hpp>
#include <helsim/machine_config.hpp>

#include "kernel/core/call_registry.hpp"
#include "kernel/core/object.hpp"
#include "kernel/ipc/stream_actions.hpp"
#include "kernel/memory/space.hpp"
#include "kernel/threads/futex.hpp"
#include "sim/host.hpp"

namespace helsim::kernel {

class Thread;
class IrqController;
class DeviceRegistry;
class ExtensionOperations;

class Kernel {
public:
	Kernel(const MachineConfig &config, sim::Host &host);
	Kernel(const Kernel &) = delete;
	Kernel &operator=(const Kernel &) = delete;
	~Kernel();

	const MachineConfig &config() const { return config_; }
	sim::Host &host() { return host_; }
	FutexTable &futexes() { return futexes_; }
	const VirtualWindow &window() const { return window_; }
	// Every object kind: the built-ins, registered by the constructor, then extensions'.
	ObjectKinds &kinds() { return kinds_; }
	const ObjectKinds &kinds() const { return kinds_; }
	Ref<AddressSpace> create_space();

	// Universe ids, in order of creation from 1 (traces name universes by them).
	std::uint32_t new_universe_id() {
		return next_universe_id_.fetch_add(1, std::memory_order_relaxed);
	}

	// Object registry, for leak reports. An object is registered once constructed (by
	// make_object) and leaves when its last reference is dropped, before its destructor can
	// begin (see Object::retire), so a walk under the registry lock meets only objects whole
	// and alive; one may have no reference left, so a walk that keeps an object takes a
	// reference with try_ref.
	void register_object(Object &object);
	void unregister_object(Object &object);
	// Every live object except those in `except`.
	std::vector<LeakedObject> live_objects(const std::set<const void *> &except = {}) const;
	// Objects created (over the kernel's life) and live now, by kind, for the run report.
	std::vector<ObjectCount> object_counts() const;
	// Page faults resolved on the kernel path (AddressSpace::fault) and for user code's
	// direct touches (resolve_host_fault). Relaxed: counters only.
	std::atomic<std::uint64_t> kernel_faults{0};
	std::atomic<std::uint64_t> host_faults{0};
	// Teardown: empties every live object of a Teardown::close_handles kind (universes),
	// which breaks reference cycles through handles.
	void clear_universes();
	// Teardown: lets every live object of a Teardown::abandon kind complete the work still
	// waiting inside it.
	void abandon_objects();
	// Every live object, each with a reference taken (objects already dying are skipped), for
	// walks that call into the objects (reports, teardown). The walk then runs without the
	// registry lock, as it must: an object's hooks take its own lock, and a stream creates
	// objects — so takes the registry lock — under its lock.
	std::vector<Ref<Object>> live_object_refs() const;

	// Threads, for run reports and teardown.
	void register_thread(Thread &thread);
	void unregister_thread(Thread &thread);
	std::vector<Ref<Thread>> threads();
	std::atomic<std::int64_t> live_fibers{0};
	std::atomic<std::int64_t> live_attachments{0};
	// Outcomes of fiber threads that have ended, in the order they ended.
	void record_ended(ThreadReport report);
	std::vector<ThreadReport> ended_threads() const;

	// Fault injection: whether to inject a fault that occurs `ppm` times in a million.
	bool inject(std::uint32_t ppm);
	std::atomic<std::uint64_t> injected_wakeups{0};
	std::atomic<std::uint64_t> injected_delays{0};
	// FaultInjection::fail_at: counts a pass through `point` and says whether it is the one to
	// fail. Frame allocations count in the host's physical memory, which makes them.
	bool fail_at(FaultPoint point) { return fail_at_[static_cast<std::size_t>(point)].pass(); }
	sim::FailAt &fail_at_counter(FaultPoint point);

	void log(const LogRecord &record);
	void random_bytes(void *out, std::size_t n);

	// Operations accepted and completions delivered, for the exactly-once invariant: live
	// threads count what they submit, live queues what they deliver; dying ones hand their
	// figures over here.
	struct Accounting {
		std::uint64_t submitted = 0, completed = 0, posted = 0;
	};
	template <typename A>
	void retire_accounting(const A &a) {
		std::lock_guard lock{counts_mutex_};
		retired_accounting_.completed += a.completed;
		retired_accounting_.posted += a.posted;
	}
	void retire_submitted(std::uint64_t n) {
		std::lock_guard lock{counts_mutex_};
		retired_accounting_.submitted += n;
	}
	// Retired figures plus those of every live queue and thread.
	Accounting accounting() const;

	// Syscall counts of threads that have ended (live threads keep their own).
	void add_syscall_counts(const std::array<std::uint64_t, kSyscallSlots> &counts);
	std::array<std::uint64_t, kSyscallSlots> syscall_counts() const;
	// Name of syscall `number`: built-in or extension; empty if none.
	std::string syscall_label(std::uint32_t number) const { return calls_.syscall_name(number); }

	// The syscall and SQ opcode tables: the built-ins' rows and those of extensions
	// (helsim/extension.hpp).
	CallRegistry &calls() { return calls_; }
	const CallRegistry &calls() const { return calls_; }
	ext::SupercallHandler supercall_handler;
	// Asynchronous operations of extension calls still pending (ext::AsyncOperation).
	ExtensionOperations &extension_operations() { return *extension_operations_; }
	// Stream action types and their pairing rules, built-in and extension.
	StreamActions &stream_actions() { return stream_actions_; }

	// The machine's hardware access token (Machine::hardware_access_token), which gates
	// helAccessPhysical, helAccessIo and helAccessIrq; nullptr until the host asks for it.
	// The machine keeps the token alive until teardown.
	void set_hardware_token(const Object *token) {
		hardware_token_.store(token, std::memory_order_release);
	}
	bool is_hardware_token(const Object *object) const {
		return object && object == hardware_token_.load(std::memory_order_acquire);
	}

	// The simulated interrupt controller: one line per GSI (irq.hpp).
	IrqController &irqs() { return *irqs_; }
	// Simulated devices (device_registry.hpp), by MMIO window, port and GSI.
	DeviceRegistry &devices() { return *devices_; }

private:
	ObjectKinds kinds_; // first: every object's constructor reads its kind's row
	MachineConfig config_;
	sim::Host &host_;
	FutexTable futexes_;
	VirtualWindow window_;

	std::atomic<std::uint32_t> next_universe_id_{1};
	mutable std::mutex registry_mutex_;
	Object *registry_head_ = nullptr;
	std::array<std::uint64_t, kMaxObjectKinds> created_{}; // by kind; registry lock

	mutable std::mutex threads_mutex_;
	// Every thread, oldest first: an intrusive list, so that one leaves in O(1) (a vector's
	// erase made ending 100k threads quadratic).
	Thread *first_thread_ = nullptr;
	Thread *last_thread_ = nullptr;
	std::vector<ThreadReport> ended_;

	std::mutex log_mutex_;
	std::mutex random_mutex_;
	std::mt19937_64 random_;
	std::atomic<std::uint64_t> inject_draws_{0};
	// The frame_allocation slot is unused (see fail_at_counter).
	std::array<sim::FailAt, kFaultPoints> fail_at_;

	mutable std::mutex counts_mutex_;
	std::array<std::uint64_t, kSyscallSlots> retired_counts_{};
	Accounting retired_accounting_;

	CallRegistry calls_;
	std::unique_ptr<ExtensionOperations> extension_operations_;
	StreamActions stream_actions_;

	std::atomic<const Object *> hardware_token_{nullptr};

	std::unique_ptr<IrqController> irqs_;
	std::unique_ptr<DeviceRegistry> devices_;
};

} // namespace helsim::kernel
