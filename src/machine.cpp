#include <helsim/machine.hpp>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <new>
#include <set>
#include <string_view>
#include <utility>

#include <fmt/core.h>

#include "kernel/core/kernel.hpp"
#include "kernel/core/token.hpp"
#include "kernel/core/universe.hpp"
#include "kernel/core/wait_report.hpp"
#include "kernel/devices/device_registry.hpp"
#include "kernel/memory/space.hpp"
#include "kernel/threads/thread.hpp"
#include "sim/deterministic_host.hpp"
#include "sim/threads_host.hpp"
#include "sim/trace.hpp"
#include "trace_capture.hpp"

namespace helsim {

using kernel::AddressSpace;
using kernel::Ref;
using kernel::Thread;
using kernel::Universe;

const char *to_string(FaultPoint point) {
	switch (point) {
	case FaultPoint::frame_allocation: return "frame allocation";
	case FaultPoint::object_creation: return "object creation";
	case FaultPoint::handle_table_growth: return "handle table growth";
	case FaultPoint::queue_chunks: return "queue chunks";
	}
	return "?";
}

const char *to_string(ThreadOutcome outcome) {
	switch (outcome) {
	case ThreadOutcome::returned: return "returned";
	case ThreadOutcome::panicked: return "panicked";
	case ThreadOutcome::threw: return "threw";
	case ThreadOutcome::blocked: return "blocked";
	case ThreadOutcome::not_started: return "not started";
	case ThreadOutcome::killed: return "killed";
	case ThreadOutcome::faulted: return "faulted";
	}
	return "?";
}

std::string RunReport::to_string() const {
	std::string out = stuck ? "machine stuck: no thread can run any more\n" : "";
	for (const ThreadReport &t : threads) {
		out += fmt::format("  thread {:<20} {}", t.name, helsim::to_string(t.outcome));
		if (!t.message.empty())
			out += fmt::format(": {}", t.message);
		if (!t.waits_on.empty())
			out += fmt::format(" (waits on {})", t.waits_on);
		out += '\n';
	}
	out += fmt::format(
			"  operations: {} submitted, {} completed, {} pending; {} completions posted\n",
			counters.operations_submitted, counters.operations_completed, operations_pending(),
			counters.completions_posted);
	out += fmt::format("  page faults: {} kernel, {} host; {} context switches\n",
			counters.page_faults_kernel, counters.page_faults_host, counters.context_switches);
	for (const auto &[name, count] : counters.syscalls)
		out += fmt::format("  {:<24} {:>12}\n", name, count);
	for (const LeakedObject &leak : leaks)
		out += fmt::format("  leaked {} ({} references)\n", leak.description, leak.references);
	return out;
}

struct Machine::Root {
	Ref<Universe> universe;
	Ref<AddressSpace> space;
	std::mutex token_mutex;
	Ref<kernel::Token> hardware_token; // guarded by token_mutex; created on first request
	HelHandle hardware_token_handle = kHelNullHandle;
};

namespace {
MachineConfig checked(MachineConfig config) {
	if (config.cpus == 0 || config.cpus > 64)
		throw std::invalid_argument(
				fmt::format("helsim: MachineConfig::cpus must be between 1 and 64, got {}",
						config.cpus));
	if (config.physical_memory < 16 * sim::kPageSize)
		throw std::invalid_argument(
				"helsim: MachineConfig::physical_memory must be at least 64 KiB");
	if (config.stack_size < (std::size_t{16} << 10))
		throw std::invalid_argument("helsim: MachineConfig::stack_size must be at least 16 KiB");
	for (auto [name, ppm] : {std::pair{"preempt_at_syscall_ppm", config.preempt_at_syscall_ppm},
				 std::pair{"preempt_at_wake_ppm", config.preempt_at_wake_ppm}})
		if (ppm > 1'000'000)
			throw std::invalid_argument(fmt::format(
					"helsim: MachineConfig::{} is in parts per million (at most 1000000), got {}",
					name, ppm));
	return config;
}
} // namespace

// What a trace's "metadata" records: the effective configuration (after HELSIM_MODE).
static sim::TraceInfo trace_info(const MachineConfig &config) {
	return {config.seed, config.mode == Mode::deterministic ? "deterministic" : "threads",
			config.cpus};
}

// HELSIM_MODE=deterministic:<seed> turns every threads-mode machine of the process into a
// deterministic one with that seed, so that a whole test suite can be run under seeds. A value
// it does not understand is an error: ignoring it would run other seeds than asked for.
static void apply_mode_override(MachineConfig &config) {
	const char *text = std::getenv("HELSIM_MODE");
	if (!text || !*text)
		return;
	std::string_view value{text};
	constexpr std::string_view prefix = "deterministic";
	std::uint64_t seed = config.seed;
	bool valid = value == "threads" || value == prefix;
	if (!valid && value.starts_with(prefix) && value[prefix.size()] == ':') {
		std::string_view digits = value.substr(prefix.size() + 1);
		auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), seed);
		valid = !digits.empty() && error == std::errc{} && end == digits.data() + digits.size();
	}
	if (!valid)
		throw std::invalid_argument(
				fmt::format("helsim: HELSIM_MODE=\"{}\" is none of threads, deterministic, "
							"deterministic:<seed> (a decimal seed)",
						value));
	if (value == "threads" || config.mode == Mode::deterministic)
		return;
	config.mode = Mode::deterministic;
	config.seed = seed;
}

Machine::Machine(MachineConfig config) {
	apply_mode_override(config);
	config = checked(std::move(config));
	if ((capture_ = TraceCapture::State::current())) {
		capture_path_ = capture_->next_path();
		config.trace = true;
	}
	if (config.mode == Mode::deterministic)
		host_ = std::make_unique<sim::DeterministicHost>(config.cpus, config.physical_memory,
				sim::DeterministicHost::Schedule{config.seed, config.costs.context_switch_ns,
						config.costs.cross_cpu_wake_ns, config.preempt_at_syscall_ppm,
						config.preempt_at_wake_ppm});
	else
		host_ = std::make_unique<sim::ThreadsHost>(config.cpus, config.physical_memory);
	if (config.trace) {
		trace_ = std::make_unique<sim::TraceRecorder>(*host_, trace_info(config));
		host_->set_tracer(trace_.get()); // before the kernel: threads cache it
	}
	kernel_ = std::make_unique<kernel::Kernel>(config, *host_);
	if (trace_)
		trace_->set_address_window(kernel_->window().base(), kernel_->window().size());
	root_ = std::make_unique<Root>();
	root_->universe = kernel::make_object<Universe>(*kernel_);
	root_->space = kernel_->create_space();
	// After the root space exists: the machine itself must come up.
	host_->physical_memory().inject_failures(config.inject.no_memory_ppm, config.seed);
}

Machine::~Machine() {
	if (auto n = kernel_->live_attachments.load()) {
		// An Attachment points into this machine; going on would be a use after free.
		fmt::print(stderr,
				"helsim: Machine destroyed while {} Attachment(s) are alive; "
				"destroy every Attachment first\n",
				n);
		std::abort();
	}
	host_->shutdown();
	// Devices stop: callbacks still pending were dropped by the shutdown, later after() and
	// DMA calls do nothing.
	kernel_->devices().unplug_all();
	// Work still waiting inside objects completes first, with an error: exchanges that never
	// paired (they hold lanes, queues and their submitters' universes), pager requests, and
	// waiters that live on the stacks of blocked fibers, which must be done with before those
	// stacks unwind.
	kernel_->abandon_objects();
	// Fibers that never finished (a stuck machine) unwind here, so whatever their frames hold
	// is released before the leak-free teardown below.
	for (auto &thread : kernel_->threads())
		if (thread->is_fiber() && thread->started() && !thread->ended())
			thread->unwind_fiber();
	kernel_->set_hardware_token(nullptr);
	root_.reset();
	kernel_->clear_universes();
	kernel_.reset();
	// After the kernel's teardown, whose events belong to the trace.
	if (capture_) {
		std::string error;
		try {
			write_trace(capture_path_);
		} catch (const std::exception &e) {
			error = e.what();
		}
		capture_->written(capture_path_, error);
	}
	host_.reset();
}

const MachineConfig &Machine::config() const { return kernel_->config(); }

kernel::Kernel &Machine::kernel_for_extensions() { return *kernel_; }

HelHandle Machine::hardware_access_token() {
	std::lock_guard lock{root_->token_mutex};
	if (!root_->hardware_token) {
		auto token = kernel::make_object<kernel::Token>(*kernel_);
		HelHandle handle;
		if (HelError e = root_->universe->attach(token, kHelRightInvoke, handle); e != kHelErrNone)
			throw std::runtime_error(fmt::format(
					"helsim: Machine::hardware_access_token: no handle for the token (HelError {})",
					static_cast<int>(e)));
		kernel_->set_hardware_token(token.get());
		root_->hardware_token = std::move(token);
		root_->hardware_token_handle = handle;
	}
	return root_->hardware_token_handle;
}

void Machine::spawn(std::string name, Entry entry, std::initializer_list<HelHandle> handles) {
	spawn(std::move(name), std::move(entry),
			std::span<const HelHandle>{handles.begin(), handles.size()});
}

namespace {

// The new universe's handle table could not grow: memory ran out, as for the thread's stack.
struct UniverseOutOfHandles : std::bad_alloc {
	const char *what() const noexcept override {
		return "helsim: spawn: the new universe is out of handles";
	}
};

} // namespace

void Machine::spawn(std::string name, Entry entry, std::span<const HelHandle> handles) {
	Thread *caller = Thread::current();
	Universe &source = caller ? caller->universe() : *root_->universe;
	auto universe = kernel::make_object<Universe>(*kernel_);
	std::vector<HelHandle> transferred;
	for (HelHandle h : handles) {
		kernel::Resolved descriptor;
		if (source.lookup(h, descriptor) != kHelErrNone)
			throw std::invalid_argument(fmt::format(
					"helsim: spawn(\"{}\"): handle {} is not open in the caller's universe", name,
					h));
		HelHandle copied;
		if (universe->attach(std::move(descriptor.object), descriptor.rights, copied) !=
				kHelErrNone)
			throw UniverseOutOfHandles{};
		transferred.push_back(copied);
	}
	auto thread = kernel::make_object<Thread>(*kernel_, sim::TaskKind::fiber, name,
			std::move(universe), kernel_->create_space());
	thread->set_entry([entry = std::move(entry), transferred = std::move(transferred)] {
		entry(std::span<const HelHandle>{transferred});
	});
	thread->start();
}

std::unique_ptr<Attachment> Machine::attach(AttachOptions options) {
	kernel::Thread *thread = make_attached_thread(std::move(options));
	try {
		host_->attach(*thread);
	} catch (...) {
		thread->unref();
		throw;
	}
	return finish_attach(thread);
}

std::unique_ptr<Attachment> Machine::finish_attach(kernel::Thread *thread) {
	kernel_->live_attachments.fetch_add(1);
	return std::unique_ptr<Attachment>{new Attachment{thread}};
}

kernel::Thread *Machine::make_attached_thread(AttachOptions options) {
	Ref<Universe> universe = root_->universe;
	if (options.new_universe) {
		universe = kernel::make_object<Universe>(*kernel_);
	} else if (options.universe != kHelNullHandle) {
		auto r = root_->universe->resolve<Universe>(options.universe, 0);
		if (!r)
			throw std::invalid_argument(
					fmt::format("helsim: attach: {} is not a universe handle of the root universe",
							options.universe));
		universe = std::move(r.object);
	}
	Ref<AddressSpace> space = root_->space;
	if (options.new_space) {
		space = kernel_->create_space();
	} else if (options.space != kHelNullHandle) {
		auto r = root_->universe->resolve<AddressSpace>(options.space, 0);
		if (!r)
			throw std::invalid_argument(fmt::format(
					"helsim: attach: {} is not an address space handle of the root universe",
					options.space));
		space = std::move(r.object);
	}
	return kernel::make_object<Thread>(*kernel_, sim::TaskKind::attached, std::move(options.name),
			std::move(universe), std::move(space))
			.release();
}

Attachment::~Attachment() {
	if (auto *tracer = thread_->kernel().host().tracer())
		tracer->thread_gone(*thread_);
	thread_->kernel().host().detach(*thread_);
	thread_->mark_ended();
	thread_->kernel().live_attachments.fetch_sub(1);
	thread_->unref();
}

RunReport Machine::run() {
	if (sim::current_task())
		throw std::logic_error(
				"helsim: Machine::run() must be called from a host thread that is not attached");
	RunReport report;
	auto all_ended = [this] { return kernel_->live_fibers.load(std::memory_order_seq_cst) == 0; };
	host_->run_until(all_ended);
	report.stuck = !all_ended();
	report.trace_hash = host_->trace_hash();
	report.simulated_time_ns = host_->now();

	report.threads = kernel_->ended_threads();
	for (auto &thread : kernel_->threads()) {
		if (!thread->is_fiber() || thread->ended())
			continue;
		ThreadReport t{thread->name(), ThreadOutcome::not_started, {}, {}};
		if (thread->started()) {
			t.outcome = ThreadOutcome::blocked;
			t.waits_on = kernel::describe_wait(*thread);
		}
		report.threads.push_back(std::move(t));
	}

	auto counts = kernel_->syscall_counts();
	for (std::uint32_t n = 0; n < kSyscallSlots; ++n)
		if (counts[n])
			report.counters.syscalls.emplace_back(kernel_->syscall_label(n), counts[n]);
	auto accounting = kernel_->accounting();
	report.counters.operations_submitted = accounting.submitted;
	report.counters.operations_completed = accounting.completed;
	report.counters.completions_posted = accounting.posted;
	report.counters.objects = kernel_->object_counts();
	report.counters.page_faults_kernel = kernel_->kernel_faults.load(std::memory_order_relaxed);
	report.counters.page_faults_host = kernel_->host_faults.load(std::memory_order_relaxed);
	report.counters.injected_no_memory = host_->physical_memory().injected_failures();
	report.counters.injected_wakeups = kernel_->injected_wakeups.load(std::memory_order_relaxed);
	report.counters.injected_delays = kernel_->injected_delays.load(std::memory_order_relaxed);
	report.counters.context_switches = host_->context_switches();
	for (std::size_t p = 0; p < kFaultPoints; ++p) {
		const sim::FailAt &counter = kernel_->fail_at_counter(static_cast<FaultPoint>(p));
		report.counters.fault_point_passes[p] = counter.passes();
		report.counters.injected_fail_at += counter.fired() ? 1 : 0;
	}

	if (!report.stuck) {
		// Leaks: live objects that nothing the host keeps on purpose can reach. The roots are
		// the root universe, the root space and the attached threads. The walk keeps a
		// reference to everything it reaches until the leaks are listed: a host thread may
		// close the last handle to an object meanwhile, which must not free it under the walk
		// (nor let its address be reused by a new object, which would then count as reached).
		std::set<const void *> reachable;
		std::vector<Ref<kernel::Object>> reached;
		std::vector<kernel::Object *> work; // reached, references not yet followed
		auto reach = [&](kernel::Object &o) {
			if (!reachable.contains(&o) && o.try_ref()) {
				reachable.insert(&o);
				reached.push_back(Ref<kernel::Object>::adopt(&o));
				work.push_back(&o);
			}
		};
		reach(*root_->universe);
		reach(*root_->space);
		{
			std::lock_guard lock{root_->token_mutex};
			if (root_->hardware_token)
				reach(*root_->hardware_token);
		}
		for (auto &thread : kernel_->threads())
			if (!thread->is_fiber())
				reach(*thread);
		while (!work.empty()) {
			kernel::Object *o = work.back();
			work.pop_back();
			o->for_each_reference(reach);
		}
		report.leaks = kernel_->live_objects(reachable);
	}
	return report;
}

std::string Machine::trace_json() const {
	if (!trace_)
		return "{\"traceEvents\":[],\n" + sim::trace_metadata_member(trace_info(config())) + "}\n";
	return trace_->json();
}

void Machine::write_trace(const std::string &path) const {
	std::string text = trace_json();
	std::FILE *file = std::fopen(path.c_str(), "wb");
	if (!file)
		throw std::runtime_error(fmt::format("helsim: write_trace: cannot open {}", path));
	bool ok = std::fwrite(text.data(), 1, text.size(), file) == text.size();
	ok = std::fclose(file) == 0 && ok;
	if (!ok)
		throw std::runtime_error(fmt::format("helsim: write_trace: cannot write {}", path));
}

std::size_t Machine::trace_event_count() const { return trace_ ? trace_->event_count() : 0; }

std::string Counters::to_table() const {
	std::size_t width = 24;
	for (const auto &[name, count] : syscalls)
		width = std::max(width, name.size());
	std::string out = fmt::format("{:<{}} {:>12}\n", "syscall", width, "calls");
	for (const auto &[name, count] : syscalls)
		out += fmt::format("{:<{}} {:>12}\n", name, width, count);
	out += fmt::format("\n{:<{}} {:>12} {:>12}\n", "object kind", width, "created", "live");
	for (const ObjectCount &o : objects)
		out += fmt::format("{:<{}} {:>12} {:>12}\n", o.kind, width, o.created, o.live);
	out += '\n';
	auto row = [&](const char *name, std::uint64_t value) {
		out += fmt::format("{:<{}} {:>12}\n", name, width, value);
	};
	row("operations submitted", operations_submitted);
	row("operations completed", operations_completed);
	row("completions posted", completions_posted);
	row("page faults (kernel)", page_faults_kernel);
	row("page faults (host)", page_faults_host);
	row("injected: no memory", injected_no_memory);
	row("injected: spurious wake-ups", injected_wakeups);
	row("injected: delayed completions", injected_delays);
	row("context switches", context_switches);
	for (std::size_t p = 0; p < kFaultPoints; ++p)
		row(fmt::format("passes: {}", to_string(static_cast<FaultPoint>(p))).c_str(),
				fault_point_passes[p]);
	row("injected: failed passes", injected_fail_at);
	return out;
}

namespace debug {
std::uint64_t page_table_entry(const void *address) {
	kernel::Thread *self = kernel::Thread::current();
	if (!self)
		return 0;
	const std::uint64_t *pte =
			self->space().page_table().find(reinterpret_cast<std::uintptr_t>(address));
	return pte ? kernel::pte_load(pte) : 0;
}
} // namespace debug

} // namespace helsim
