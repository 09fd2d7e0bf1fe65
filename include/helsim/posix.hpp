// A POSIX subsystem in user space, built as Managarm builds it: a POSIX server (a simulated
// process with its own universe and address space) owns every process's universe, space,
// threads and file table; a client shim in each process turns POSIX calls into supercalls
// (served by the server from the thread's registers) and requests (IPC on the process's POSIX
// lane); the acceleration strategies let common calls bypass the server. docs/posix.md
// describes the architecture, each strategy and its switch, and every difference from
// Managarm and Linux.
//
//   helsim::Machine machine;
//   helsim::posix::System system{machine};
//   system.add_program("/bin/hello", [](int argc, char **argv) { ... return 0; });
//   pid_t pid = system.spawn("/bin/hello", {"hello"});
//   machine.run();                       // returns once the last process has exited
//   int status = system.exit_status(pid); // WIFEXITED(status), WEXITSTATUS(status)
//
// Inside a process the POSIX calls below keep their POSIX names and signatures, but return
// errors as negative errno values (as raw Linux syscalls and liburing do): there is no errno,
// because a fiber moves between host threads and a host thread_local cannot hold a
// process's state. The library uses nothing of helsim but its public hel API.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <helsim/machine.hpp>

namespace helsim::posix {

// One switch per acceleration strategy (docs/posix.md#acceleration-strategies); every one is
// on by default. Off, the same calls take the path Managarm took before the strategy existed,
// with the same results.
struct Options {
	// gettid, _exit, anonymous mmap/munmap, fork, execve and the signal calls Managarm makes
	// supercalls (sigprocmask, kill, sigpending, sigsuspend, sigaltstack, sigtimedwait, the
	// signal return, cancellation) trap into the server as supercalls, answered from the
	// thread's registers. Off: requests on the POSIX lane.
	bool supercalls = true;
	// The third point of the supercall ablation, not Managarm's: gettid answered on the
	// calling thread by a host callback (helsim::ext::set_supercall_handler, installed by the
	// System), with no stop and no server; the other supercalls still trap. Needs supercalls.
	bool inline_supercalls = false;
	// A read-only page of passthrough-lane handles indexed by fd: read, write, pread, pwrite,
	// readv, writev and lseek go straight to the file's server. Off: they go to the POSIX
	// server, which forwards them over the same lane (one more hop).
	bool file_table = true;
	// A page per thread shared with the server: the signal-deferral flag (SignalGuard) and the
	// thread's queue handle, which the server alerts (helAlertQueue) to end a blocked wait when
	// a signal arrives. Off: no page; signals reach a blocked thread only by
	// helInterruptThread, which cancels its wait.
	bool thread_page = true;
	// clock_gettime(CLOCK_REALTIME) reads a seqlocked page the clock owner updates, plus
	// helGetClock: no IPC. Off: a request on the POSIX lane.
	bool clock_page = true;
	// Device files publish their readiness in a seqlocked status page that the server's
	// poll/epoll read instead of asking the device. Off: the server asks the device's server
	// with a request per fd per check.
	bool status_page = true;
	// Every request is one submission: offer + sends + imbue + receives in one action list.
	// Off: the client submits the offer alone and then each action as its own submission on
	// the conversation (as Managarm did before action lists were chained), driving the queue
	// after each.
	bool batching = true;
	// fork() forks anonymous memory copy-on-write (kHelSubmitForkMemory). Off: the server
	// copies every page eagerly into fresh memory.
	bool fork_cow = true;
	// CLOCK_REALTIME at the server's start, in nanoseconds since the Unix epoch. 0: the host's
	// real time in threads mode, 2026-01-01T00:00:00Z in deterministic mode (so runs replay).
	std::int64_t realtime_at_start_ns = 0;
	// Receives what processes write to /dev/console (fds 1 and 2 of a process the host
	// spawns). Default: the host's stdout.
	std::function<void(std::string_view)> console{};
};

// What the subsystem has done so far; every field only grows.
struct Counters {
	std::uint64_t server_requests = 0;      // requests the POSIX server served on POSIX lanes
	std::uint64_t supercalls = 0;           // supercalls the server observed and answered
	std::uint64_t passthrough_requests = 0; // requests file servers served on passthrough lanes
	std::uint64_t forwarded_requests =
			0; // file requests the POSIX server forwarded (file_table off)
	std::uint64_t client_submissions = 0; // IPC submissions (kHelSubmitExchangeMsgs) by clients
	std::uint64_t processes_started = 0;
	std::uint64_t processes_exited = 0;
	std::uint64_t clock_page_updates = 0; // writes of the clock tracker page (start, clock_settime)
	// Signals.
	std::uint64_t signals_sent = 0;      // signals generated (kill, raise, faults, SIGCHLD, ...)
	std::uint64_t signals_delivered = 0; // handlers run: frames written and upcalls made
	std::uint64_t interrupts = 0;        // helInterruptThread calls by the server
	std::uint64_t alerts = 0;            // helAlertQueue calls (thread page: a deferred signal)
	std::uint64_t cancellations = 0;     // cancels that reached a server (EINTR)
	// Processes.
	std::uint64_t forks = 0;
	std::uint64_t execs = 0;
	std::uint64_t fork_pages_copied = 0; // pages copied eagerly by fork (fork_cow off)
	// Readiness.
	std::uint64_t status_page_reads = 0;    // device readiness read from a status page
	std::uint64_t device_poll_requests = 0; // device readiness asked by a request (status_page off)
};

// A device file's server (include/helsim/posix_device.hpp).
class Device;

// A program's main. argv[argc] is nullptr; the strings live as long as the process.
using Main = std::function<int(int argc, char **argv)>;
// The same, with argv as strings.
using MainWithArgs = std::function<int(std::vector<std::string> argv)>;

// The host's view of the subsystem. Construct it before machine.run(); it must outlive the
// machine's run. The server runs while processes live: machine.run() returns once the last
// POSIX process has exited, and the server has then closed everything it held. spawn() after
// run() returned starts the server again (files on the tmpfs persist).
class System {
public:
	explicit System(Machine &machine, Options options = {});
	System(const System &) = delete;
	System &operator=(const System &) = delete;
	~System();

	// Registers a program under an absolute path; spawn() and the in-process spawn() find it
	// there. Throws std::invalid_argument for a relative path or one already registered.
	void add_program(std::string path, Main main);
	void add_program(std::string path, MainWithArgs main);

	// Starts a process running the program at `path` with `argv` (argv[0] conventionally the
	// program's name); its fd 0 is /dev/null, fds 1 and 2 are /dev/console. Returns its pid.
	// Throws std::invalid_argument if no program is registered at `path`. From the host
	// thread, before or between runs; inside a process, use posix::spawn() instead.
	pid_t spawn(const std::string &path, std::vector<std::string> argv);

	// The status of an exited process as waitpid reports it (<sys/wait.h> macros apply).
	// Throws std::out_of_range if `pid` was never spawned, std::logic_error if it has not
	// exited.
	int exit_status(pid_t pid) const;
	bool has_exited(pid_t pid) const;

	// Registers a device file at an absolute path (e.g. "/dev/ticker"), served by its own
	// server process outside the POSIX server (include/helsim/posix_device.hpp). Throws
	// std::invalid_argument for a relative path or one already taken.
	void add_device(std::string path, std::shared_ptr<Device> device);

	// Readable at any time, from the host or from inside a process.
	Counters counters() const;

	const Options &options() const;

	struct State;

private:
	std::shared_ptr<State> state_;
};

// ------------------------------------------------------------------ inside a process
// Each call below must run on a thread of a POSIX process (one System::spawn or spawn()
// started); elsewhere it returns -ENOSYS.

pid_t getpid();
pid_t getppid();
pid_t gettid();
[[noreturn]] void _exit(int status);

int open(const char *path, int flags, mode_t mode = 0);
int close(int fd);
ssize_t read(int fd, void *buffer, size_t count);
ssize_t write(int fd, const void *buffer, size_t count);
ssize_t pread(int fd, void *buffer, size_t count, off_t offset);
ssize_t pwrite(int fd, const void *buffer, size_t count, off_t offset);
ssize_t readv(int fd, const struct iovec *iov, int iovcnt);
ssize_t writev(int fd, const struct iovec *iov, int iovcnt);
off_t lseek(int fd, off_t offset, int whence);
int pipe2(int fds[2], int flags);
int pipe(int fds[2]);
int dup(int fd);
int dup2(int fd, int newfd);
int dup3(int fd, int newfd, int flags);
int fcntl(int fd, int cmd, int arg = 0);
int fstat(int fd, struct stat *statbuf);
int unlink(const char *path);

int clock_gettime(clockid_t clock, struct timespec *time);
int clock_settime(clockid_t clock, const struct timespec *time);
int nanosleep(const struct timespec *request, struct timespec *remaining);

// Anonymous private or shared memory only (MAP_ANONYMOUS); returns the address, or a
// negative errno value cast to a pointer (test with mmap_failed()).
void *mmap(void *address, size_t length, int prot, int flags, int fd, off_t offset);
int munmap(void *address, size_t length);
inline bool mmap_failed(const void *result) {
	return reinterpret_cast<std::uintptr_t>(result) >= static_cast<std::uintptr_t>(-4095);
}

// Starts the program registered at `path` as a child of the caller, with argv
// (nullptr-terminated) and a copy of the caller's file table (every fd without FD_CLOEXEC, at
// the same number, sharing the open file description): fork + execve in one request.
// Returns the child's pid, -ENOENT for an unknown path.
pid_t spawn(const char *path, const char *const argv[]);

// ------------------------------------------------------------------ processes
// fork with a child entry: a simulated thread runs host code and cannot return twice, so the
// child starts in child(arg) (docs/posix.md#fork) and exits with its return value. The child
// is a new process: new universe and space, the file table cloned at the same fds, signal
// dispositions, mask and alternate stack inherited. Memory from mmap is forked copy-on-write
// and appears in the child at new addresses (fork_address() translates); `arg` is translated
// if it points into such memory. Host memory (the heap, globals) is not the process's: it is
// shared, as between threads. Returns the child's pid in the parent, a negative errno if none
// was made (-ENOMEM, -EAGAIN).
pid_t fork(int (*child)(void *), void *arg);
// In a forked child: the child's address of the parent's mmap'd `address` (the address itself
// if it is not in memory the child inherited).
void *fork_address(const void *address);
// Replaces the calling process's program with the one registered at `path`; returns only on
// failure (-ENOENT for a path no program is registered at, the caller unharmed).
int execve(const char *path, char *const argv[], char *const envp[]);
pid_t waitpid(pid_t pid, int *status, int options);
pid_t wait(int *status);

// ------------------------------------------------------------------ signals
// Handlers run on the thread's own host stack as upcalls (docs/posix.md#signals); the frame
// (ucontext_t and siginfo_t) lives in the process's memory: the thread's signal stack, or the
// sigaltstack (which must be mmap'd memory) for SA_ONSTACK.
int sigaction(int signo, const struct sigaction *action, struct sigaction *old);
int sigprocmask(int how, const sigset_t *set, sigset_t *old);
int sigpending(sigset_t *set);
int sigsuspend(const sigset_t *mask);
int pause();
int kill(pid_t pid, int signo);
int raise(int signo);
int sigaltstack(const stack_t *stack, stack_t *old);
// The signal number taken, -EAGAIN on timeout, -EINTR for a handled signal not in `set`.
int sigtimedwait(const sigset_t *set, siginfo_t *info, const struct timespec *timeout);

// ------------------------------------------------------------------ readiness
int poll(struct pollfd *fds, nfds_t count, int timeout_ms);
int ppoll(struct pollfd *fds, nfds_t count, const struct timespec *timeout, const sigset_t *mask);
int epoll_create1(int flags);
int epoll_ctl(int epfd, int op, int fd, struct epoll_event *event);
int epoll_wait(int epfd, struct epoll_event *events, int max_events, int timeout_ms);
int eventfd(unsigned int initial, int flags);

// System::counters(), from inside a process.
Counters counters();

} // namespace helsim::posix
