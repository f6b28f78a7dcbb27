// Small file-system helpers for tests: fresh temporary directories, whole-file reads and
// writes. Files written into a cluster's directory are given to the postgres user when root.
#pragma once

#include <string>

namespace pgrouter::test {

// A new empty directory $TMPDIR/prefixXXXXXX (TMPDIR defaults to /tmp), mode 0700.
std::string make_temp_dir(const std::string& prefix);

// Whole file, or "" when it does not exist or cannot be read.
std::string read_file(const std::string& path);
// Replaces (or with append, extends) path; throws std::runtime_error on failure.
void write_file(const std::string& path, const std::string& text, bool append = false);

// rm -rf; never throws.
void remove_tree(const std::string& path);

}  // namespace pgrouter::test
