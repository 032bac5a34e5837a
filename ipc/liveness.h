// Process liveness across processes: a pid plus the process start time (so a reused pid is not mistaken
// for the original), packed into one 64-bit word that can be stored in shared memory.
#pragma once

#include <sys/types.h>

#include <cstdint>

namespace hfe::liveness {

// Start time of `pid` in clock ticks since boot (/proc/<pid>/stat field 22); 0 when the process is gone.
uint64_t StartTime(pid_t pid);

// This process's identity: pid in the low 32 bits, low 32 bits of its start time in the high ones.
uint64_t SelfToken();
inline pid_t TokenPid(uint64_t token) { return static_cast<pid_t>(token & 0xffffffffu); }

// True when the process named by the token is running (not exited, not a zombie, same start time).
bool IsAlive(uint64_t token);
// True when some process with this pid is running (not a zombie); for words that hold a pid alone.
bool PidAlive(pid_t pid);

// The inode of this process's PID namespace (/proc/self/ns/pid); 0 when it cannot be read. Pids, and so
// liveness tokens, mean something only inside one namespace.
uint64_t PidNamespace();

}  // namespace hfe::liveness
