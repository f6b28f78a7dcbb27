// Credentials files for routers under test: an authdb exported from a cluster's pg_authid
// (the way operators are told to make one), written once per cluster.
#pragma once

#include <string>

namespace pgrouter::test {

class Cluster;

// `"role" "secret"` lines for every role with a password, from the cluster's primary.
std::string authdb_text(const Cluster& cluster);
// Writes authdb_text() to the cluster's directory (once) and returns the file's path.
const std::string& authdb_file(const Cluster& cluster);

}  // namespace pgrouter::test
