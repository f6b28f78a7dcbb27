// The pgrouter.* parameters and statement hints (see route_controls.h). The statement reader
// follows PostgreSQL's lexical rules only as far as SET/RESET/SHOW need them: the grammar
// has already accepted the text, so anything unexpected is simply "not one of ours".
#include "pgrouter/route/route_controls.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>

#include "pgrouter/base/ascii.h"
#include "pgrouter/base/lsn.h"
#include "pgrouter/proto/sqlstate.h"

namespace pgrouter {

namespace {

constexpr std::string_view kPrefix = "pgrouter.";

constexpr std::array<std::string_view, 4> kNames{"pgrouter.route", "pgrouter.max_staleness",
                                                 "pgrouter.min_lsn", "pgrouter.commit_lsn"};

constexpr std::string_view kStalenessUnits =
    "Valid units for this parameter are \"B\", \"kB\", \"MB\", \"GB\", \"TB\", \"us\", \"ms\", "
    "\"s\", \"min\", \"h\", and \"d\".";

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

bool ident_start(char c) {
    return std::isalpha(static_cast<unsigned char>(c)) != 0 || c == '_' ||
           static_cast<unsigned char>(c) >= 0x80;
}

bool ident_char(char c) {
    return ident_start(c) || std::isdigit(static_cast<unsigned char>(c)) != 0 || c == '$';
}

std::string_view trimmed(std::string_view s) {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

ControlError invalid_value(Control c, std::string_view value, std::string hint = {}) {
    return ControlError{proto::kSqlstateInvalidParameterValue,
                        "invalid value for parameter \"" + std::string(control_name(c)) + "\": \"" +
                            std::string(value) + "\"",
                        {},
                        std::move(hint)};
}

// One token of a SET/RESET/SHOW statement.
struct Token {
    enum class Kind : std::uint8_t { End, Word, Quoted, String, Number, Punct } kind = Kind::End;
    std::string text;  // Word: lower-cased; Quoted, String: unescaped; Punct: the character
};

class Lexer {
  public:
    explicit Lexer(std::string_view s) : s_(s) {}

    Token next() {
        skip_blanks();
        Token t;
        if (i_ >= s_.size()) return t;
        char c = s_[i_];
        if ((c == 'e' || c == 'E') && i_ + 1 < s_.size() && s_[i_ + 1] == '\'') {
            ++i_;
            return string(true);
        }
        if (c == '\'') return string(false);
        if (c == '"') {
            t.kind = Token::Kind::Quoted;
            for (++i_; i_ < s_.size(); ++i_) {
                if (s_[i_] == '"') {
                    if (i_ + 1 < s_.size() && s_[i_ + 1] == '"') {
                        t.text += '"';
                        ++i_;
                        continue;
                    }
                    ++i_;
                    return t;
                }
                t.text += s_[i_];
            }
            return Token{};  // unterminated: not ours
        }
        if (ident_start(c)) {
            t.kind = Token::Kind::Word;
            while (i_ < s_.size() && ident_char(s_[i_])) t.text += ascii_lower(s_[i_++]);
            return t;
        }
        bool sign =
            (c == '-' || c == '+') && i_ + 1 < s_.size() &&
            (std::isdigit(static_cast<unsigned char>(s_[i_ + 1])) != 0 || s_[i_ + 1] == '.');
        if (sign || std::isdigit(static_cast<unsigned char>(c)) != 0 || c == '.') {
            if (c == '.' && !(i_ + 1 < s_.size() &&
                              std::isdigit(static_cast<unsigned char>(s_[i_ + 1])) != 0)) {
                t.kind = Token::Kind::Punct;
                t.text = s_.substr(i_++, 1);
                return t;
            }
            t.kind = Token::Kind::Number;
            if (sign) t.text += s_[i_++];
            while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) != 0 ||
                                      s_[i_] == '.' || s_[i_] == '_')) {
                t.text += s_[i_++];
            }
            return t;
        }
        t.kind = Token::Kind::Punct;
        t.text = s_.substr(i_++, 1);
        return t;
    }

  private:
    void skip_blanks() {
        while (i_ < s_.size()) {
            if (is_space(s_[i_])) {
                ++i_;
            } else if (s_.substr(i_, 2) == "--") {
                while (i_ < s_.size() && s_[i_] != '\n') ++i_;
            } else if (s_.substr(i_, 2) == "/*") {
                int depth = 0;
                while (i_ < s_.size()) {
                    if (s_.substr(i_, 2) == "/*") {
                        ++depth;
                        i_ += 2;
                    } else if (s_.substr(i_, 2) == "*/") {
                        i_ += 2;
                        if (--depth == 0) break;
                    } else {
                        ++i_;
                    }
                }
            } else {
                return;
            }
        }
    }

    Token string(bool escapes) {
        Token t;
        t.kind = Token::Kind::String;
        for (++i_; i_ < s_.size(); ++i_) {
            char c = s_[i_];
            if (escapes && c == '\\' && i_ + 1 < s_.size()) {
                t.text += s_[++i_];
                continue;
            }
            if (c == '\'') {
                if (i_ + 1 < s_.size() && s_[i_ + 1] == '\'') {
                    t.text += '\'';
                    ++i_;
                    continue;
                }
                ++i_;
                return t;
            }
            t.text += c;
        }
        return Token{};  // unterminated: not ours
    }

    std::string_view s_;
    std::size_t i_ = 0;
};

bool is_word(const Token& t, std::string_view w) {
    return t.kind == Token::Kind::Word && t.text == w;
}
bool is_punct(const Token& t, char c) {
    return t.kind == Token::Kind::Punct && t.text.size() == 1 && t.text[0] == c;
}

// A dotted parameter name starting with `t`; empty when there is none.
std::string read_name(Lexer& lex, Token& t) {
    std::string name;
    for (;;) {
        if (t.kind != Token::Kind::Word && t.kind != Token::Kind::Quoted) return {};
        name += t.kind == Token::Kind::Word ? t.text : ascii_lowered(t.text);
        t = lex.next();
        if (!is_punct(t, '.')) return name;
        name += '.';
        t = lex.next();
    }
}

// "123" or "1.5" followed by a unit: the number, scaled by the unit's factor.
struct Unit {
    std::string_view name;
    double factor;  // bytes, or nanoseconds
    bool time;
};

constexpr std::array<Unit, 11> kUnits{
    Unit{"b", 1, false},
    Unit{"kb", 1024.0, false},
    Unit{"mb", 1024.0 * 1024, false},
    Unit{"gb", 1024.0 * 1024 * 1024, false},
    Unit{"tb", 1024.0 * 1024 * 1024 * 1024, false},
    Unit{"us", 1e3, true},
    Unit{"ms", 1e6, true},
    Unit{"s", 1e9, true},
    Unit{"min", 60e9, true},
    Unit{"h", 3600e9, true},
    Unit{"d", 86400e9, true},
};

}  // namespace

StalenessBound StalenessBound::tighter(const StalenessBound& o) const {
    return StalenessBound{std::min(bytes, o.bytes), std::min(ns, o.ns)};
}

RouteControls with_hint(const RouteControls& session, const StatementHint& hint) {
    RouteControls out = session;
    out.primary = out.primary || hint.primary;
    // A hint's bound replaces the session's for that statement (it may be looser).
    if (hint.staleness.bounded()) out.staleness = hint.staleness;
    return out;
}

StatementHint parse_hint(std::string_view sql) {
    StatementHint hint;
    std::size_t i = 0;
    while (i < sql.size() && is_space(sql[i])) ++i;
    if (sql.substr(i, 2) != "/*") return hint;
    std::size_t end = sql.find("*/", i + 2);
    if (end == std::string_view::npos) return hint;
    std::string_view body = trimmed(sql.substr(i + 2, end - i - 2));
    constexpr std::string_view kTag = "pgrouter:";
    if (body.size() < kTag.size() || !ascii_iequals(body.substr(0, kTag.size()), kTag)) {
        return hint;
    }
    body.remove_prefix(kTag.size());
    while (!body.empty()) {
        std::size_t stop = body.find_first_of(", \t\r\n");
        std::string_view item = body.substr(0, stop);
        body = stop == std::string_view::npos ? std::string_view() : body.substr(stop + 1);
        if (item.empty()) continue;
        if (ascii_iequals(item, "primary")) {
            hint.primary = true;
            continue;
        }
        std::size_t eq = item.find('=');
        if (eq == std::string_view::npos) continue;
        if (!ascii_iequals(item.substr(0, eq), "max_staleness")) continue;
        if (auto b = parse_staleness(item.substr(eq + 1))) hint.staleness = *b;
    }
    return hint;
}

bool is_control_name(std::string_view name) {
    return name.size() > kPrefix.size() && name.substr(0, kPrefix.size()) == kPrefix;
}

std::optional<Control> find_control(std::string_view name) {
    for (std::size_t i = 0; i < kNames.size(); ++i) {
        if (kNames[i] == name) return static_cast<Control>(i);
    }
    return std::nullopt;
}

std::string_view control_name(Control c) { return kNames[static_cast<std::size_t>(c)]; }

ControlError unknown_control(std::string_view name) {
    return ControlError{proto::kSqlstateInvalidName,
                        "invalid configuration parameter name \"" + std::string(name) + "\"",
                        "\"pgrouter\" is a reserved prefix.",
                        {}};
}

ControlError unrecognized_control(std::string_view name) {
    return ControlError{proto::kSqlstateUndefinedObject,
                        "unrecognized configuration parameter \"" + std::string(name) + "\"",
                        {},
                        {}};
}

std::optional<StalenessBound> parse_staleness(std::string_view value) {
    std::string_view v = trimmed(value);
    std::size_t i = 0;
    while (i < v.size() && (std::isdigit(static_cast<unsigned char>(v[i])) != 0 || v[i] == '.')) {
        ++i;
    }
    std::string_view number = v.substr(0, i);
    if (number.empty() || std::count(number.begin(), number.end(), '.') > 1 || number == ".") {
        return std::nullopt;  // also a sign: a bound is never negative
    }
    double n = 0;
    double scale = 1;
    bool fraction = false;
    for (char c : number) {
        if (c == '.') {
            fraction = true;
            continue;
        }
        if (fraction) scale /= 10;
        n = fraction ? n + (c - '0') * scale : n * 10 + (c - '0');
    }
    std::string unit = ascii_lowered(trimmed(v.substr(i)));
    StalenessBound b;
    if (unit.empty()) {
        if (n == 0) return StalenessBound{0, 0};
        unit = "ms";
    }
    for (const Unit& u : kUnits) {
        if (u.name != unit) continue;
        double scaled = n * u.factor;
        if (u.time) {
            if (scaled >= 9.2e18) return std::nullopt;
            b.ns = static_cast<std::int64_t>(scaled);
        } else {
            if (scaled >= 1.8e19) return std::nullopt;
            b.bytes = static_cast<std::uint64_t>(scaled);
        }
        return b;
    }
    return std::nullopt;
}

std::optional<ControlError> ControlValues::set(Control c, std::string_view value) {
    switch (c) {
        case Control::Route: {
            std::string_view v = trimmed(value);
            if (ascii_iequals(v, "primary") || ascii_iequals(v, "auto")) {
                controls_.primary = ascii_iequals(v, "primary");
                return std::nullopt;
            }
            return invalid_value(c, value, "Available values: primary, auto.");
        }
        case Control::MaxStaleness: {
            auto b = parse_staleness(value);
            if (!b) return invalid_value(c, value, std::string(kStalenessUnits));
            controls_.staleness = *b;
            staleness_text_ = std::string(trimmed(value));
            return std::nullopt;
        }
        case Control::MinLsn: {
            auto lsn = parse_lsn(trimmed(value));
            if (!lsn) return invalid_value(c, value);
            controls_.min_lsn = *lsn;
            return std::nullopt;
        }
        case Control::CommitLsn:
            break;
    }
    return ControlError{proto::kSqlstateCantChangeRuntimeParam,
                        "parameter \"" + std::string(control_name(c)) + "\" cannot be changed",
                        {},
                        {}};
}

void ControlValues::reset(Control c, const ControlValues& base) {
    switch (c) {
        case Control::Route:
            controls_.primary = base.controls_.primary;
            break;
        case Control::MaxStaleness:
            controls_.staleness = base.controls_.staleness;
            staleness_text_ = base.staleness_text_;
            break;
        case Control::MinLsn:
            controls_.min_lsn = base.controls_.min_lsn;
            break;
        case Control::CommitLsn:
            break;
    }
}

std::string ControlValues::show(Control c) const {
    switch (c) {
        case Control::Route:
            return controls_.primary ? "primary" : "auto";
        case Control::MaxStaleness:
            return staleness_text_;
        case Control::MinLsn:
            return format_lsn(controls_.min_lsn);
        case Control::CommitLsn:
            break;
    }
    return {};
}

ControlStatement read_control_statement(std::string_view stmt) {
    using Verb = ControlStatement::Verb;
    ControlStatement out;
    Lexer lex(stmt);
    Token t = lex.next();
    if (is_word(t, "show")) {
        t = lex.next();
        out.name = read_name(lex, t);
        if (!out.name.empty() && t.kind == Token::Kind::End) out.verb = Verb::Show;
        return out;
    }
    if (is_word(t, "reset")) {
        t = lex.next();
        if (is_word(t, "all")) {
            out.verb = lex.next().kind == Token::Kind::End ? Verb::ResetAll : Verb::Other;
            return out;
        }
        out.name = read_name(lex, t);
        if (!out.name.empty() && t.kind == Token::Kind::End) out.verb = Verb::Reset;
        return out;
    }
    if (!is_word(t, "set")) return out;
    t = lex.next();
    Verb verb = Verb::Set;
    if (is_word(t, "local") || is_word(t, "session")) {
        verb = t.text == "local" ? Verb::SetLocal : Verb::Set;
        t = lex.next();
    }
    out.name = read_name(lex, t);
    if (out.name.empty() || !(is_word(t, "to") || is_punct(t, '='))) return ControlStatement{};
    t = lex.next();
    if (is_word(t, "default")) {
        if (lex.next().kind != Token::Kind::End) return ControlStatement{};
        out.verb = verb == Verb::SetLocal ? Verb::SetLocal : Verb::Reset;
        return out;  // SET LOCAL x TO DEFAULT: no values
    }
    for (;;) {
        if (t.kind == Token::Kind::End || t.kind == Token::Kind::Punct) return ControlStatement{};
        out.values.push_back(t.text);
        t = lex.next();
        if (t.kind == Token::Kind::End) break;
        if (!is_punct(t, ',')) return ControlStatement{};
        t = lex.next();
    }
    out.verb = verb;
    return out;
}

std::vector<std::pair<std::string, std::string>> startup_controls(std::string_view options) {
    // PostgreSQL's pg_split_opts(): blanks separate, a backslash takes the next byte as is.
    std::vector<std::string> words;
    std::string word;
    bool in_word = false;
    for (std::size_t i = 0; i < options.size(); ++i) {
        char c = options[i];
        if (is_space(c)) {
            if (in_word) words.push_back(std::move(word));
            word.clear();
            in_word = false;
            continue;
        }
        if (c == '\\' && i + 1 < options.size()) c = options[++i];
        word += c;
        in_word = true;
    }
    if (in_word) words.push_back(std::move(word));
    std::vector<std::pair<std::string, std::string>> out;
    for (std::size_t i = 0; i < words.size(); ++i) {
        std::string setting;
        if (words[i] == "-c" && i + 1 < words.size()) {
            setting = words[++i];
        } else if (words[i].rfind("-c", 0) == 0 && words[i].size() > 2) {
            setting = words[i].substr(2);
        } else if (words[i].rfind("--", 0) == 0) {
            setting = words[i].substr(2);
        } else {
            continue;
        }
        std::size_t eq = setting.find('=');
        if (eq == std::string::npos) continue;
        std::string name = ascii_lowered(setting.substr(0, eq));
        std::replace(name.begin(), name.end(), '-', '_');  // as ParseLongOption does
        if (is_control_name(name)) out.emplace_back(name, setting.substr(eq + 1));
    }
    return out;
}

}  // namespace pgrouter
