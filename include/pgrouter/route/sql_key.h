// The classification cache's key for a query: its text with number and string literals
// replaced by '?', so that statements differing only in constants (pgbench's
// "... WHERE aid = 4711") share one entry. Pure, no allocation beyond the output string.
#pragma once

#include <string>
#include <string_view>

namespace pgrouter {

// Writes the key of `sql` into `key`. Only plain data statements (first word SELECT, WITH,
// INSERT, UPDATE, DELETE, VALUES or TABLE) are normalised: for the others a literal can
// change the classification (SET default_transaction_read_only = 'on'), so their key is
// the text itself. (A data statement whose literals matter, set_config(), is one the
// classifier names facts for, and the cache keeps those under the exact text.) Dollar quotes,
// quoted identifiers, comments and $n parameters are kept as they are; unterminated constructs end
// normalisation.
void sql_cache_key(std::string_view sql, std::string& key);

}  // namespace pgrouter
