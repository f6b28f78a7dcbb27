// What pgrouter may use to log in to a backend as a client, as authentication left it: a
// plaintext password, an md5 secret, or the SCRAM ClientKey recovered from the client's proof.
// Held only in the session's memory; never logged.
#pragma once

#include <optional>
#include <string>

#include "pgrouter/auth/scram.h"

namespace pgrouter {

struct BackendCredentials {
    std::optional<std::string> password;    // plaintext (authdb, or the client's cleartext)
    std::optional<std::string> md5_secret;  // "md5..." from authdb
    std::optional<ScramKey> client_key;     // recovered from the client's SCRAM proof
    std::optional<ScramVerifier> verifier;  // the verifier client_key was checked against
};

}  // namespace pgrouter
