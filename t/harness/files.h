// Small file-system helpers for tests: fresh temporary directories, whole-file reads and
// writes. Files written into a cluster's directory are given to the postgres user when root.
#pragma once

#include <string>

namespace pgrouter::test {

// A new empty directory base/prefixXXXXXX, mode 0700; base "" means $TMPDIR, else /tmp.
std::string make_temp_dir(const std::string& prefix, const std::string& base = "");

// Where throwaway clusters go: $PGROUTER_TEST_TMPDIR if set, else /dev/shm when it is a
// writable tmpfs with at least 1 GiB free (a cluster is ~150 MB; on a busy disk a base
// backup takes seconds, in memory a tenth of that), else "" (make_temp_dir's default).
std::string fast_temp_base();

// Whole file, or "" when it does not exist or cannot be read.
std::string read_file(const std::string& path);
// Replaces (or with append, extends) path; throws std::runtime_error on failure.
void write_file(const std::string& path, const std::string& text, bool append = false);

// rm -rf; never throws.
void remove_tree(const std::string& path);

}  // namespace pgrouter::test
