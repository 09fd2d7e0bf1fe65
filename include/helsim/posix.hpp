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
	// gettid, _exit, anonymous mmap/munmap trap into the server as supercalls, answered from
	// the thread's registers. Off: requests on the POSIX lane.
	bool supercalls = true;
	// A read-only page of passthrough-lane handles indexed by fd: read, write, pread, pwrite,
	// readv, writev and lseek go straight to the file's server. Off: they go to the POSIX
	// server, which forwards them over the same lane (one more hop).
	bool file_table = true;
	// A page per thread shared with the server: the signal-deferral flag and the thread's
	// queue handle (issue 15 interrupts blocked waits through it). Off: no page.
	bool thread_page = true;
	// clock_gettime(CLOCK_REALTIME) reads a seqlocked page the clock owner updates, plus
	// helGetClock: no IPC. Off: a request on the POSIX lane.
	bool clock_page = true;
	// Device files publish their readiness in a seqlocked status page that the server's
	// poll/epoll read instead of asking the device (issue 15). Off: the server asks.
	bool status_page = true;
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
};

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

// helsim's stand-in for fork + exec until issue 15: starts the program registered at `path`
// as a child of the caller, with argv (nullptr-terminated) and a copy of the caller's file
// table (every fd without FD_CLOEXEC, at the same number, sharing the open file description).
// Returns the child's pid, -ENOENT for an unknown path.
pid_t spawn(const char *path, const char *const argv[]);

// System::counters(), from inside a process.
Counters counters();

} // namespace helsim::posix
