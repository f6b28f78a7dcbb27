// Reading and parsing the hba and authdb files into one immutable AccessRules.
#include "pgrouter/auth/access.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace pgrouter {

namespace {

bool read_text(const std::string& path, std::string& text, std::vector<std::string>& errors) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        errors.push_back(path + ": cannot read: " + strerror(errno));
        return false;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    text = ss.str();
    return true;
}

}  // namespace

AccessResult load_access(const std::string& hba_path, const std::string& authdb_path) {
    AccessResult result;
    auto rules = std::make_shared<AccessRules>();
    std::string text;
    if (hba_path.empty()) {
        HbaParseResult builtin = parse_hba("host all all all scram-sha-256\n", "built-in hba");
        rules->hba = std::move(builtin.rules);
    } else if (read_text(hba_path, text, result.errors)) {
        HbaParseResult hba = parse_hba(text, hba_path);
        result.errors.insert(result.errors.end(), hba.errors.begin(), hba.errors.end());
        rules->hba = std::move(hba.rules);
    }
    if (!authdb_path.empty() && read_text(authdb_path, text, result.errors)) {
        AuthDbParseResult db = parse_authdb(text, authdb_path);
        result.errors.insert(result.errors.end(), db.errors.begin(), db.errors.end());
        rules->authdb = std::move(db.db);
    }
    if (result.errors.empty()) result.rules = std::move(rules);
    return result;
}

}  // namespace pgrouter
