// The reader of one pgrouter.conf, private to src/config: walks the syntax tree
// (config_lexer.h), looks every statement up in the directive table (directives.h) and lets
// the directive's handler store its value. What a handler may use is public here: the value
// readers (each reports its own error with file:line and returns nullopt), the Config being
// built and the backend whose block is open. No I/O.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pgrouter/config/config.h"
#include "pgrouter/config/config_lexer.h"
#include "pgrouter/config/directives.h"

namespace pgrouter {

// Lines of the directives that name files, for load_config's checks.
struct PathLines {
    int hba = 0;
    int authdb = 0;
};

class ConfigReader {
  public:
    // Starts from the table's defaults (each default_value read by its own handler).
    explicit ConfigReader(std::string_view file);

    ConfigResult run(ConfigSyntax syntax);
    const PathLines& path_lines() const { return lines_; }

    void error(int line, std::string message) {
        errors_.push_back({file_, line, std::move(message)});
    }

    void block(DirectiveScope scope, const std::vector<ConfigStatement>& statements);
    void backend(const ConfigStatement& st);
    void tls_block(const ConfigStatement& st);

    // Value readers: each reports its own error and returns nullopt on a bad value.
    std::optional<Endpoint> address(const ConfigArg& arg, bool allow_any);
    std::optional<std::uint16_t> port(const ConfigArg& arg, std::string_view directive);
    std::optional<Millis> duration(const ConfigArg& arg, std::string_view directive);
    std::optional<std::uint64_t> size(const ConfigArg& arg, std::string_view directive);
    std::optional<long long> integer(const ConfigArg& arg, std::string_view directive, long long lo,
                                     long long hi);
    std::optional<bool> boolean(const ConfigArg& arg, std::string_view directive);
    std::optional<std::string> text(const ConfigArg& arg, std::string_view directive,
                                    bool allow_empty);

    Config config_;
    BackendConfig* target_;  // the backend whose block is being read (or defaults_)
    PathLines lines_;

  private:
    void unknown(DirectiveScope scope, const ConfigStatement& st);

    std::string file_;
    BackendConfig defaults_;  // what `backend default` blocks set so far
    int backend_statements_ = 0;
    std::map<std::string, int> backend_lines_;  // backend_key() -> line
    std::vector<ConfigError> errors_;
};

}  // namespace pgrouter
