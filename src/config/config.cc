// The meaning of pgrouter.conf: checks each statement of the syntax tree (config_lexer.cc)
// against the directive table (directives.cc) and turns it into a Config, collecting every
// error with file:line. parse_config() never touches the file system; load_config() reads
// the file, resolves relative paths and checks that the files it names can be read.
#include "pgrouter/config/config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <exception>
#include <filesystem>
#include <limits>
#include <map>
#include <span>
#include <utility>

#include "config_reader.h"
#include "pgrouter/base/ascii.h"

namespace pgrouter {
namespace {

constexpr std::size_t kMaxHostName = 253;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool all_digits(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), is_digit);
}

// Decimal digits to an unsigned value; nullopt when not all digits or above `max`.
std::optional<std::uint64_t> to_unsigned(std::string_view s, std::uint64_t max) {
    if (!all_digits(s)) return std::nullopt;
    std::uint64_t v = 0;
    for (char c : s) {
        auto d = static_cast<std::uint64_t>(c - '0');
        if (v > (max - d) / 10) return std::nullopt;
        v = v * 10 + d;
    }
    return v;
}

// Optimal string alignment distance, so a swapped pair of letters costs one edit.
std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
    for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
    for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
            }
        }
    }
    return d[a.size()][b.size()];
}

std::string_view scope_place(DirectiveScope scope) {
    switch (scope) {
        case DirectiveScope::Top:
            return "at top level";
        case DirectiveScope::Tls:
            return "in a 'tls' block";
        case DirectiveScope::Health:
            return "in a 'health' block";
        case DirectiveScope::Backend:
            return "in a 'backend' block";
        case DirectiveScope::Pool:
            return "in a 'pool' block";
    }
    return "";
}

bool valid_ipv6(std::string_view host) {
    // A zone ("fe80::1%eth0") is not inet_pton's business; the address before it is.
    std::size_t percent = host.find('%');
    if (percent != std::string_view::npos) {
        std::string_view zone = host.substr(percent + 1);
        if (zone.empty() || zone.size() > 64) return false;
        for (char c : zone) {
            bool ok = is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                      c == '-' || c == '.';
            if (!ok) return false;
        }
    }
    std::string addr(host.substr(0, percent));
    in6_addr out{};
    return inet_pton(AF_INET6, addr.c_str(), &out) == 1;
}

// The key under which two spellings of one backend compare equal: host names are
// case-insensitive, and IPv6 addresses have many spellings ("0::1" is "::1").
std::string backend_key(const Endpoint& ep) {
    std::string host = ascii_lowered(ep.host);
    std::size_t percent = host.find('%');
    in6_addr addr{};
    char buf[INET6_ADDRSTRLEN];
    if (host.find(':') != std::string::npos &&
        inet_pton(AF_INET6, host.substr(0, percent).c_str(), &addr) == 1 &&
        inet_ntop(AF_INET6, &addr, buf, sizeof buf) != nullptr) {
        host = buf + (percent == std::string::npos ? "" : host.substr(percent));
    }
    return Endpoint{host, ep.port}.to_string();
}

// A DNS name (letters, digits, '-', '_', dot-separated labels) or a dotted IPv4 address.
bool valid_host(std::string_view host) {
    if (host.empty() || host.size() > kMaxHostName) return false;
    if (std::all_of(host.begin(), host.end(), [](char c) { return is_digit(c) || c == '.'; })) {
        in_addr out{};
        return inet_pton(AF_INET, std::string(host).c_str(), &out) == 1;
    }
    std::size_t label = 0;
    for (std::size_t i = 0; i <= host.size(); ++i) {
        if (i == host.size() || host[i] == '.') {
            if (label == 0 || label > 63) return false;
            label = 0;
            continue;
        }
        char c = host[i];
        bool ok = is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (c == '-' && label > 0);
        if (!ok) return false;
        ++label;
    }
    return true;
}

struct Unit {
    std::string_view name;
    std::uint64_t factor;
};

// "<digits><unit>" with a unit from `units` ("" is the bare number's unit, and units are
// case-insensitive). Reports "bad <what>" (no number, a fraction, a sign), "unknown unit"
// and "too large" itself.
std::optional<std::uint64_t> scaled(ConfigReader& in, const ConfigArg& arg,
                                    std::string_view directive, std::string_view what,
                                    std::span<const Unit> units, std::string_view unit_list) {
    std::string_view s = arg.text;
    std::size_t digits = 0;
    while (digits < s.size() && is_digit(s[digits])) ++digits;
    std::string unit = ascii_lowered(s.substr(digits));
    if (digits == 0 ||
        !std::all_of(unit.begin(), unit.end(), [](char c) { return c >= 'a' && c <= 'z'; })) {
        in.error(arg.line,
                 "bad " + std::string(what) + " " + quote(s) + " for " + quote(directive) +
                     " (expected a number with an optional unit: " + std::string(unit_list) + ")");
        return std::nullopt;
    }
    auto it =
        std::find_if(units.begin(), units.end(), [&](const Unit& u) { return u.name == unit; });
    if (it == units.end()) {
        in.error(arg.line, "unknown unit " + quote(s.substr(digits)) + " in " + quote(s) + " for " +
                               quote(directive) + " (expected " + std::string(unit_list) + ")");
        return std::nullopt;
    }
    constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    auto n = to_unsigned(s.substr(0, digits), kMax);
    if (!n || *n > kMax / it->factor) {
        in.error(arg.line,
                 std::string(what) + " " + quote(s) + " for " + quote(directive) + " is too large");
        return std::nullopt;
    }
    return *n * it->factor;
}

}  // namespace

ConfigReader::ConfigReader(std::string_view file) : target_(&defaults_), file_(file) {
    config_.file = file_;
    for (const Directive& d : directives()) {
        if (d.default_value.empty()) continue;
        ConfigStatement st;
        st.name = d.name;
        st.args.push_back({std::string(d.default_value), 0});
        d.read(*this, st);  // Backend scope: into defaults_, which target_ points at
    }
}

ConfigResult ConfigReader::run(ConfigSyntax syntax) {
    for (const ConfigSyntaxError& e : syntax.errors) error(e.line, e.message);
    block(DirectiveScope::Top, syntax.statements);
    if (backend_statements_ == 0) {
        error(0, "no backends configured (expected at least one 'backend HOST:PORT')");
    }
    ConfigResult out;
    std::stable_sort(errors_.begin(), errors_.end(), [](const auto& a, const auto& b) {
        return (a.line == 0 ? INT_MAX : a.line) < (b.line == 0 ? INT_MAX : b.line);
    });
    out.errors = std::move(errors_);
    if (out.errors.empty()) out.config = std::move(config_);
    return out;
}

void ConfigReader::block(DirectiveScope scope, const std::vector<ConfigStatement>& statements) {
    std::map<std::string, int> seen;
    for (const ConfigStatement& st : statements) {
        std::string name = ascii_lowered(st.name);  // directive names are case-insensitive
        const Directive* d = find_directive(scope, name);
        if (d == nullptr) {
            unknown(scope, st);
            continue;
        }
        if (!(scope == DirectiveScope::Top && name == "backend")) {
            auto [it, fresh] = seen.emplace(name, st.line);
            if (!fresh) {
                error(st.line, "duplicate " + quote(st.name) + " (first set on line " +
                                   std::to_string(it->second) + ")");
                continue;
            }
        }
        auto nargs = static_cast<int>(st.args.size());
        if (nargs != d->args) {
            std::string what = nargs < d->args ? "missing argument" : "too many arguments";
            error(st.line,
                  what + " for " + quote(st.name) + " (expected " + std::string(d->expect) + ")");
            continue;
        }
        if (d->block == BlockRule::Required && !st.has_block) {
            error(st.line, "expected '{' after " + quote(st.name));
            continue;
        }
        if (d->block == BlockRule::None && st.has_block) {
            error(st.block_line, quote(st.name) + " does not take a block");
            continue;
        }
        d->read(*this, st);
    }
}

void ConfigReader::unknown(DirectiveScope scope, const ConfigStatement& st) {
    std::string name = ascii_lowered(st.name);
    std::string places;
    for (DirectiveScope other : {DirectiveScope::Top, DirectiveScope::Tls, DirectiveScope::Health,
                                 DirectiveScope::Backend, DirectiveScope::Pool}) {
        if (other == scope || find_directive(other, name) == nullptr) continue;
        places += places.empty() ? "" : " or ";
        places += scope_place(other);
    }
    if (!places.empty()) {
        error(st.line, quote(st.name) + " is not allowed " + std::string(scope_place(scope)) +
                           " (it belongs " + places + ")");
        return;
    }
    std::string_view best;
    std::size_t best_distance = name.size() <= 4 ? 2 : 3;  // anything closer is suggested
    for (const Directive& d : directives()) {
        // No directive is longer than 32; spare hostile input the quadratic work.
        if (d.scope != scope || name.size() > 32) continue;
        std::size_t distance = edit_distance(name, d.name);
        if (distance < best_distance) {
            best = d.name;
            best_distance = distance;
        }
    }
    std::string message = "unknown directive " + quote(st.name);
    if (scope != DirectiveScope::Top) message += " " + std::string(scope_place(scope));
    if (!best.empty()) message += " (did you mean " + quote(best) + "?)";
    error(st.line, message);
}

void ConfigReader::backend(const ConfigStatement& st) {
    const ConfigArg& arg = st.args[0];
    if (ascii_lowered(arg.text) == "default") {
        if (!st.has_block) {
            error(st.line, "expected '{' after 'backend default'");
            return;
        }
        target_ = &defaults_;
        block(DirectiveScope::Backend, st.block);
        return;
    }
    ++backend_statements_;
    BackendConfig b = defaults_;
    b.line = st.line;
    std::optional<Endpoint> ep = address(arg, false);
    if (st.has_block) {
        target_ = &b;
        block(DirectiveScope::Backend, st.block);
        target_ = &defaults_;
    }
    if (!ep) return;
    b.host = ep->host;
    b.port = ep->port;
    auto [it, fresh] = backend_lines_.emplace(backend_key(*ep), st.line);
    if (!fresh) {
        error(arg.line, "duplicate backend " + ep->to_string() + " (first declared on line " +
                            std::to_string(it->second) + ")");
        return;
    }
    config_.backends.push_back(std::move(b));
}

void ConfigReader::tls_block(const ConfigStatement& st) {
    config_.tls.enabled = true;
    config_.tls.line = st.line;
    block(DirectiveScope::Tls, st.block);
    for (auto [name, line] :
         {std::pair{"cert", config_.tls.cert_line}, std::pair{"key", config_.tls.key_line}}) {
        if (line == 0) {
            error(st.line, "missing " + quote(name) + " in the 'tls' block");
        }
    }
}

std::optional<Endpoint> ConfigReader::address(const ConfigArg& arg, bool allow_any) {
    std::string_view s = arg.text;
    auto fail = [&](const std::string& message) {
        error(arg.line, message);
        return std::nullopt;
    };
    std::string_view host;
    std::string_view port_text;
    bool bracketed = !s.empty() && s[0] == '[';
    if (bracketed) {
        std::size_t close = s.find(']');
        if (close == std::string_view::npos || (close + 1 < s.size() && s[close + 1] != ':')) {
            return fail("bad address " + quote(s) + " (expected [IPV6]:PORT)");
        }
        host = s.substr(1, close - 1);
        port_text = close + 1 < s.size() ? s.substr(close + 2) : std::string_view{};
        if (!valid_ipv6(host)) {
            return fail("bad IPv6 address " + quote(host) + " in " + quote(s));
        }
    } else {
        std::size_t colon = s.rfind(':');
        if (colon == std::string_view::npos) {
            return fail("missing port in " + quote(s) + " (expected HOST:PORT)");
        }
        if (s.find(':') != colon) {
            return fail("IPv6 address needs brackets in " + quote(s) + " (expected [IPV6]:PORT)");
        }
        host = s.substr(0, colon);
        port_text = s.substr(colon + 1);
        if (host.empty()) return fail("missing host in " + quote(s) + " (expected HOST:PORT)");
        if (host == "*") {
            if (!allow_any) {
                return fail("'*' is not a backend address in " + quote(s) +
                            " (expected a host name or an IP address)");
            }
        } else if (!valid_host(host)) {
            return fail("bad host " + quote(host) + " in " + quote(s) +
                        " (expected a host name or an IP address)");
        }
    }
    if (port_text.empty()) {
        return fail("missing port in " + quote(s) + " (expected HOST:PORT)");
    }
    auto p = to_unsigned(port_text, 65535);
    if (!p || *p == 0) {
        return fail("bad port " + quote(port_text) + " in " + quote(s) + " (expected 1-65535)");
    }
    return Endpoint{std::string(host), static_cast<std::uint16_t>(*p)};
}

std::optional<std::uint16_t> ConfigReader::port(const ConfigArg& arg, std::string_view directive) {
    auto p = to_unsigned(arg.text, 65535);
    if (!p || *p == 0) {
        error(arg.line,
              "bad port " + quote(arg.text) + " for " + quote(directive) + " (expected 1-65535)");
        return std::nullopt;
    }
    return static_cast<std::uint16_t>(*p);
}

std::optional<Millis> ConfigReader::duration(const ConfigArg& arg, std::string_view directive) {
    static constexpr std::array kUnits = {Unit{"", 1000}, Unit{"ms", 1}, Unit{"s", 1000},
                                          Unit{"m", 60 * 1000}, Unit{"h", 60 * 60 * 1000}};
    auto ms = scaled(*this, arg, directive, "duration", kUnits, "ms, s, m or h");
    if (!ms) return std::nullopt;
    if (*ms == 0) {
        error(arg.line, quote(directive) + " must be greater than 0");
        return std::nullopt;
    }
    return Millis(static_cast<Millis::rep>(*ms));
}

std::optional<std::uint64_t> ConfigReader::size(const ConfigArg& arg, std::string_view directive) {
    static constexpr std::array kUnits = {Unit{"", 1},           Unit{"b", 1},
                                          Unit{"k", 1ULL << 10}, Unit{"kb", 1ULL << 10},
                                          Unit{"m", 1ULL << 20}, Unit{"mb", 1ULL << 20},
                                          Unit{"g", 1ULL << 30}, Unit{"gb", 1ULL << 30}};
    return scaled(*this, arg, directive, "size", kUnits, "b, k, M or G");
}

std::optional<long long> ConfigReader::integer(const ConfigArg& arg, std::string_view directive,
                                               long long lo, long long hi) {
    std::string_view s = arg.text;
    std::string_view digits = !s.empty() && s[0] == '-' ? s.substr(1) : s;
    std::string range = std::to_string(lo) + "-" + std::to_string(hi);
    if (!all_digits(digits)) {
        error(arg.line,
              "bad number " + quote(s) + " for " + quote(directive) + " (expected " + range + ")");
        return std::nullopt;
    }
    auto n = to_unsigned(digits, static_cast<std::uint64_t>(hi));
    if (digits.size() != s.size() || !n || static_cast<long long>(*n) < lo) {
        error(arg.line, std::string(directive) + " " + std::string(s) +
                            " is out of range (expected " + range + ")");
        return std::nullopt;
    }
    return static_cast<long long>(*n);
}

// on/off, as PostgreSQL also takes true/false, yes/no and 1/0.
std::optional<bool> ConfigReader::boolean(const ConfigArg& arg, std::string_view directive) {
    std::string v = ascii_lowered(arg.text);
    if (v == "on" || v == "true" || v == "yes" || v == "1") return true;
    if (v == "off" || v == "false" || v == "no" || v == "0") return false;
    error(arg.line,
          "bad value " + quote(arg.text) + " for " + quote(directive) + " (expected on or off)");
    return std::nullopt;
}

std::optional<std::string> ConfigReader::text(const ConfigArg& arg, std::string_view directive,
                                              bool allow_empty) {
    if (arg.text.empty() && !allow_empty) {
        error(arg.line, "empty value for " + quote(directive));
        return std::nullopt;
    }
    return arg.text;
}

namespace {

ConfigResult parse(std::string_view text, std::string_view file, PathLines* lines) {
    try {
        ConfigReader in(file);
        ConfigResult result = in.run(parse_config_syntax(text));
        if (lines != nullptr) *lines = in.path_lines();
        return result;
    } catch (const std::exception& e) {
        ConfigResult result;
        result.errors.push_back({std::string(file), 0, std::string("cannot parse: ") + e.what()});
        return result;
    }
}

// Empty when `path` can be opened for reading and is not a directory, else why not.
std::string unreadable(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) return std::strerror(errno);
    struct stat st {};
    std::string why;
    if (::fstat(fd, &st) != 0) {
        why = std::strerror(errno);
    } else if (S_ISDIR(st.st_mode)) {
        why = std::strerror(EISDIR);
    }
    ::close(fd);
    return why;
}

bool read_file(const std::string& path, std::string& out, int& err) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        err = errno;
        return false;
    }
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n == 0) break;
        if (n < 0) {
            if (errno == EINTR) continue;
            err = errno;
            ::close(fd);
            return false;
        }
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return true;
}

}  // namespace

std::string quote(std::string_view s) {
    constexpr std::size_t kShown = 80;
    std::string out = "'";
    for (std::size_t i = 0; i < s.size() && i < kShown; ++i) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x20 || c == 0x7f) {
            constexpr char kHex[] = "0123456789abcdef";
            out += "\\x";
            out += kHex[c >> 4];
            out += kHex[c & 0xf];
        } else {
            out += static_cast<char>(c);
        }
    }
    if (s.size() > kShown) out += "...";
    return out + "'";
}

std::string Endpoint::to_string() const {
    std::string p = std::to_string(port);
    if (host.find(':') != std::string::npos) return "[" + host + "]:" + p;
    return host + ":" + p;
}

std::string ConfigError::to_string() const {
    if (line <= 0) return file + ": " + message;
    return file + ":" + std::to_string(line) + ": " + message;
}

std::string_view tls_mode_name(TlsMode mode) {
    switch (mode) {
        case TlsMode::Off:
            return "off";
        case TlsMode::Verify:
            return "verify";
        case TlsMode::SkipVerify:
            return "skipverify";
    }
    return "unknown";
}

ConfigResult parse_config(std::string_view text, std::string_view file) {
    return parse(text, file, nullptr);
}

ConfigResult load_config(const std::string& file) {
    ConfigResult result;
    try {
        std::string text;
        int err = 0;
        if (!read_file(file, text, err)) {
            result.errors.push_back({file, 0, std::string("cannot read: ") + std::strerror(err)});
            return result;
        }
        PathLines lines;
        result = parse(text, file, &lines);
        if (!result.config) return result;
        Config& config = *result.config;

        std::error_code ec;
        std::filesystem::path self = std::filesystem::absolute(file, ec);
        if (ec) self = file;
        std::filesystem::path dir = self.parent_path();
        config.file = self.lexically_normal().string();
        auto resolve = [&](std::string& path) {
            if (!path.empty() && path[0] != '/') path = (dir / path).lexically_normal().string();
        };
        resolve(config.hba);
        resolve(config.authdb);
        resolve(config.pidfile);
        resolve(config.tls.cert);
        resolve(config.tls.key);
        resolve(config.tls.ca);
        for (BackendConfig& b : config.backends) resolve(b.ca);

        auto check = [&](const std::string& path, int line, const std::string& what) {
            if (path.empty()) return;
            std::string why = unreadable(path);
            if (!why.empty()) {
                result.errors.push_back(
                    {file, line, "cannot read " + what + " " + quote(path) + ": " + why});
            }
        };
        check(config.hba, lines.hba, "hba file");
        check(config.authdb, lines.authdb, "authdb file");
        check(config.tls.cert, config.tls.cert_line, "tls cert");
        check(config.tls.key, config.tls.key_line, "tls key");
        check(config.tls.ca, config.tls.ca_line, "tls ca");
        for (const BackendConfig& b : config.backends) {
            check(b.ca, b.line, "ca file of backend " + b.address());
        }
        if (!result.errors.empty()) result.config.reset();
    } catch (const std::exception& e) {
        result.config.reset();
        result.errors.push_back({file, 0, std::string("cannot load: ") + e.what()});
    }
    return result;
}

}  // namespace pgrouter
