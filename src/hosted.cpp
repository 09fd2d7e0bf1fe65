// helsim::hosted: boots a Machine before main(), attaches the main thread and every thread the
// program creates, and at exit detaches, runs the machine and reports (docs/hosting.md).
//
// Order of events in a hosted process:
//  (1) boot(), an ELF constructor of priority 101 in the executable: the configuration (the
//      program's helsim::hosted::configure, then the environment), the Machine, the main
//      thread's attachment.
//  (2) pthread_create, interposed: on an attached creator the new thread's kernel object is
//      made and queued at once (Host::prepare_attach: deterministic mode takes creation
//      order, not host scheduling, as the order threads join the schedule); the new host
//      thread starts in start_attached(), attaches and stores its Attachment under a pthread
//      key.
//  (3) A thread ends: C++ thread_local destructors (glibc's __call_tls_dtors) run before the
//      pthread key destructors, so the key's destructor detach_thread() detaches after every
//      thread_local that may close a hel descriptor.
//  (4) pthread_join, interposed: in deterministic mode the joiner leaves the schedule while
//      the host blocks it (Host::begin_host_wait); the joined thread's detach wakes it.
//  (5) exit(): the main thread's thread_local destructors, then the atexit handlers in reverse
//      order: the program's static destructors (registered after boot), then shutdown()
//      (registered by boot), which detaches the main thread, runs the machine, reports and
//      destroys it. The exit status stays the program's.
#include <helsim/hosted.hpp>
#include <helsim/machine.hpp>

#include <dlfcn.h>
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string_view>

#include <fmt/core.h>

#include "kernel/core/kernel.hpp"
#include "kernel/threads/thread.hpp"
#include "sim/host.hpp"

// The sanitizers' own pthread_create and pthread_join (weak: absent without a sanitizer). A
// static sanitizer runtime's interposing definitions are weak and lose to ours, so ours must
// call theirs for the sanitizer to see the thread. The names are the runtimes'.
// NOLINTBEGIN(bugprone-reserved-identifier)
extern "C" int __interceptor_pthread_create(pthread_t *, const pthread_attr_t *, void *(*)(void *),
		void *) __attribute__((weak));
extern "C" int __interceptor_pthread_join(pthread_t, void **) __attribute__((weak));
// NOLINTEND(bugprone-reserved-identifier)

// Referenced by the link option of helsim::hosted (-Wl,--undefined=helsim_hosted_anchor), so
// that this object is linked even into a program that creates no thread.
extern "C" {
__attribute__((used)) int helsim_hosted_anchor = 0;
}

namespace helsim {

namespace detail {
struct Hosting {
	static kernel::Thread *make(Machine &machine, std::string name) {
		return machine.make_attached_thread(AttachOptions{.name = std::move(name)});
	}
	static std::unique_ptr<Attachment> attached(Machine &machine, kernel::Thread *thread) {
		return machine.finish_attach(thread);
	}
	static sim::Host &host(Machine &machine) { return *machine.host_; }
	static kernel::Thread *thread(Attachment &attachment) { return attachment.thread_; }
};
} // namespace detail

namespace hosted {
__attribute__((weak)) void configure(Config &) {}
} // namespace hosted

namespace {

using detail::Hosting;

// A thread the program created while the machine ran: the joiner waiting for it, if any.
// Touched by attached threads only; in deterministic mode they hold the baton when they do.
struct Child {
	sim::Task *joiner = nullptr;
};

struct State {
	std::atomic<Machine *> machine{nullptr};
	bool deterministic = false;
	bool report = false;
	std::string trace_file;
	Attachment *main = nullptr;
	pthread_key_t key{};
	std::atomic<std::uint64_t> created{0};
	std::mutex children_mutex;
	std::map<pthread_t, std::shared_ptr<Child>> children;
};

State &state() {
	static State *s = new State; // never destroyed: threads may outlive the static destructors
	return *s;
}

using CreateFn = int (*)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
using JoinFn = int (*)(pthread_t, void **);

CreateFn next_create() {
	static CreateFn fn = __interceptor_pthread_create
			? __interceptor_pthread_create
			: reinterpret_cast<CreateFn>(dlsym(RTLD_NEXT, "pthread_create"));
	return fn;
}

JoinFn next_join() {
	static JoinFn fn = __interceptor_pthread_join
			? __interceptor_pthread_join
			: reinterpret_cast<JoinFn>(dlsym(RTLD_NEXT, "pthread_join"));
	return fn;
}

[[noreturn]] void fail(const std::string &message) {
	fmt::print(stderr, "{}\n", message);
	std::fflush(stderr);
	_exit(2);
}

const char *env(const char *name) {
	const char *value = std::getenv(name);
	return value && *value ? value : nullptr;
}

// HELSIM_MODE itself is applied by the Machine (the same rules as for every machine).
void apply_environment(hosted::Config &config) {
	if (const char *text = env("HELSIM_CPUS")) {
		std::string_view value{text};
		unsigned cpus = 0;
		auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), cpus);
		if (error != std::errc{} || end != value.data() + value.size() || cpus < 1 || cpus > 64)
			fail(fmt::format("helsim: HELSIM_CPUS=\"{}\" is not a number of CPUs from 1 to 64",
					value));
		config.cpus = cpus;
	}
	if (const char *text = env("HELSIM_REPORT")) {
		std::string_view value{text};
		if (value != "0" && value != "1")
			fail(fmt::format("helsim: HELSIM_REPORT=\"{}\" is neither 0 nor 1", value));
		config.report = value == "1";
	}
	if (const char *text = env("HELSIM_TRACE"))
		config.trace_file = text;
}

// "[thread] message" on stderr, as the kernel's default; a panic of an attached thread (the
// program's own threads) ends the process as a failed HEL_CHECK should.
void log_line(const LogRecord &record) {
	fmt::print(stderr, "[{}] {}\n", record.thread, record.message);
	if (record.severity != kHelLogSeverityCritical || !record.message.starts_with("panic: "))
		return;
	sim::Task *task = sim::current_task();
	if (!task || task->is_fiber())
		return; // a fiber thread ends, panicked, and the run report says so
	fmt::print(stderr, "helsim: helPanic on thread \"{}\": the hosted program aborts\n",
			record.thread);
	std::fflush(stderr);
	std::abort();
}

void detach_thread(void *value);
void shutdown();

__attribute__((constructor(101))) void boot() {
	State &s = state();
	hosted::Config config;
	hosted::configure(config);
	apply_environment(config);
	MachineConfig machine_config;
	machine_config.cpus = config.cpus;
	machine_config.mode = config.deterministic ? Mode::deterministic : Mode::threads;
	machine_config.seed = config.seed;
	machine_config.trace = !config.trace_file.empty();
	machine_config.log_sink = log_line;
	if (int error = pthread_key_create(&s.key, detach_thread))
		fail(fmt::format("helsim: hosted: pthread_key_create failed ({})", error));
	Machine *machine = nullptr;
	try {
		// Its CPUs' host threads start before `machine` is published: not attached.
		machine = new Machine{machine_config};
		s.main = machine->attach(AttachOptions{.name = "main"}).release();
	} catch (const std::exception &e) {
		fail(e.what());
	}
	s.deterministic = machine->config().mode == Mode::deterministic;
	s.report = config.report;
	s.trace_file = config.trace_file;
	s.machine.store(machine, std::memory_order_release);
	// Registered before the program's static constructors run, so it runs after their
	// destructors (atexit order), and before the sanitizers' leak check, registered earlier.
	std::atexit(shutdown);
}

void shutdown() {
	State &s = state();
	Machine *machine = s.machine.load(std::memory_order_acquire);
	if (!machine)
		return;
	if (sim::current_task() != Hosting::thread(*s.main)) {
		fmt::print(stderr,
				"helsim: the hosted program exits from a thread other than main; "
				"the machine is left as it is (no report)\n");
		return;
	}
	s.machine.store(nullptr, std::memory_order_release); // threads created from now on: plain
	delete s.main;
	s.main = nullptr;
	if (auto alive = machine->kernel_for_extensions().live_attachments.load()) {
		fmt::print(stderr,
				"helsim: {} thread(s) of the hosted program still run at exit; the machine is "
				"left as it is (no report)\n",
				alive);
		return;
	}
	try {
		RunReport report = machine->run();
		if (!s.trace_file.empty())
			machine->write_trace(s.trace_file);
		if (s.report)
			fmt::print(stderr, "helsim run report:\n{}", report.to_string());
		delete machine;
	} catch (const std::exception &e) {
		fmt::print(stderr, "{}\n", e.what());
	}
	std::fflush(stderr);
}

struct Launch {
	void *(*start)(void *);
	void *arg;
	kernel::Thread *thread; // prepared by the creator, or nullptr: attach on arrival
	std::string name;
	std::shared_ptr<Child> child;
};

// What the pthread key holds for an attached thread the program created.
struct Attached {
	std::unique_ptr<Attachment> attachment;
	std::shared_ptr<Child> child;
};

// Step (3): after the thread's thread_local destructors.
void detach_thread(void *value) {
	std::unique_ptr<Attached> attached{static_cast<Attached *>(value)};
	{
		std::lock_guard lock{state().children_mutex};
		state().children.erase(pthread_self());
	}
	if (attached->child->joiner) {
		kernel::Thread *self = Hosting::thread(*attached->attachment);
		self->kernel().host().unpark(*attached->child->joiner);
	}
	attached.reset();
}

void *start_attached(void *raw) {
	std::unique_ptr<Launch> launch{static_cast<Launch *>(raw)};
	if (!hosted::machine()) // created during the exit teardown
		return launch->start(launch->arg);
	Machine &machine = *hosted::machine();
	auto attached = std::make_unique<Attached>();
	attached->child = std::move(launch->child);
	if (launch->thread) {
		Hosting::host(machine).attach_prepared(*launch->thread);
		attached->attachment = Hosting::attached(machine, launch->thread);
	} else {
		attached->attachment = machine.attach(AttachOptions{.name = std::move(launch->name)});
	}
	pthread_setspecific(state().key, attached.release());
	auto start = launch->start;
	void *arg = launch->arg;
	launch.reset();
	return start(arg);
}

} // namespace

namespace hosted {
Machine *machine() { return state().machine.load(std::memory_order_acquire); }
} // namespace hosted

} // namespace helsim

using namespace helsim;

// Step (2). A thread created before boot, after shutdown, or by a fiber's code is not attached
// by the creator: it attaches itself on arrival (in deterministic mode it then waits until no
// other attached thread is alive).
extern "C" int pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*start)(void *),
		void *arg) {
	Machine *machine = hosted::machine();
	if (!machine)
		return next_create()(thread, attr, start, arg);
	auto launch = std::make_unique<Launch>(Launch{start, arg, nullptr,
			fmt::format("thread-{}", state().created.fetch_add(1) + 1), std::make_shared<Child>()});
	sim::Task *creator = sim::current_task();
	sim::Host &host = Hosting::host(*machine);
	if (creator && !creator->is_fiber()) {
		launch->thread = Hosting::make(*machine, launch->name);
		host.prepare_attach(*launch->thread);
	}
	kernel::Thread *prepared = launch->thread;
	std::shared_ptr<Child> child = launch->child;
	int error = next_create()(thread, attr, start_attached, launch.get());
	if (error) {
		// The prepared thread object stays with the scheduler, which retires it.
		if (prepared)
			host.cancel_prepared(*prepared);
		return error;
	}
	(void)launch.release(); // start_attached owns it now
	if (state().deterministic) {
		// Before the child can end: it runs only once this thread gives up the baton.
		std::lock_guard lock{state().children_mutex};
		state().children[*thread] = std::move(child);
	}
	return 0;
}

// Step (4).
extern "C" int pthread_join(pthread_t thread, void **result) {
	State &s = state();
	sim::Task *self = sim::current_task();
	Machine *machine = hosted::machine();
	if (!machine || !s.deterministic || !self || self->is_fiber())
		return next_join()(thread, result);
	{
		std::lock_guard lock{s.children_mutex};
		auto it = s.children.find(thread);
		if (it == s.children.end()) // ended already (or not attached): the host join is short
			return next_join()(thread, result);
		it->second->joiner = self;
	}
	sim::Host &host = Hosting::host(*machine);
	host.begin_host_wait(*self);
	int error = next_join()(thread, result);
	host.end_host_wait(*self);
	return error;
}
