// Leaving the terminal (double fork, setsid), the pidfile that guards against two
// instances, and the open-files limit the process starts with. Used by the supervisor only.
#pragma once

#include <sys/types.h>

#include <string>

namespace pgrouter {

// Detaches from the terminal: fork, setsid, fork, chdir /, stdio to /dev/null.
// Returns in the grandchild only; false if a fork failed.
[[nodiscard]] bool daemonize();

// False with `error` set when `path` names a live pgrouter process other than `allowed`
// (during a binary upgrade the pidfile names the old supervisor until the new one is ready).
[[nodiscard]] bool pidfile_check(const std::string& path, std::string& error, pid_t allowed = 0);
[[nodiscard]] bool pidfile_write(const std::string& path, std::string& error);
void pidfile_remove(const std::string& path);

// Raises the RLIMIT_NOFILE soft limit to the hard limit (every client and server connection
// holds a descriptor) and logs both once. Children inherit it.
void raise_open_files_limit();

}  // namespace pgrouter
