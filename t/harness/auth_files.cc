// Exporting SCRAM verifiers and md5 secrets from pg_authid into an authdb file.
#include "auth_files.h"

#include <map>

#include "cluster.h"
#include "files.h"

namespace pgrouter::test {

std::string authdb_text(const Cluster& cluster) {
    Rows rows = cluster.query(cluster.primary(),
                              "SELECT rolname, rolpassword FROM pg_authid "
                              "WHERE rolpassword IS NOT NULL ORDER BY rolname");
    std::string out;
    for (const auto& row : rows) out += "\"" + row[0] + "\" \"" + row[1] + "\"\n";
    return out;
}

const std::string& authdb_file(const Cluster& cluster) {
    // Keyed by directory: a cluster made later may live at a destroyed one's address.
    static std::map<std::string, std::string> written;
    auto it = written.find(cluster.dir());
    if (it != written.end()) return it->second;
    std::string path = cluster.dir() + "/authdb.txt";
    write_file(path, authdb_text(cluster));
    return written.emplace(cluster.dir(), path).first->second;
}

}  // namespace pgrouter::test
