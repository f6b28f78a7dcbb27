// Who may connect and with which secrets: the HBA rules and the authdb, read from the files
// the configuration names. Workers hold one immutable copy per configuration generation;
// load_config() runs the same loader so that `pgrouter -t` reports their errors.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "pgrouter/auth/authdb.h"
#include "pgrouter/auth/hba.h"

namespace pgrouter {

struct AccessRules {
    std::vector<HbaRule> hba;
    AuthDb authdb;
};

struct AccessResult {
    std::shared_ptr<const AccessRules> rules;  // set when errors is empty
    std::vector<std::string> errors;           // "file:line: message"
};

// Without an hba file every client must pass scram-sha-256 (the built-in rule); without an
// authdb no user has a secret.
[[nodiscard]] AccessResult load_access(const std::string& hba_path, const std::string& authdb_path);

}  // namespace pgrouter
