// sql_cache_key (see sql_key.h): one left-to-right scan following PostgreSQL's lexical rules
// for the constructs that matter (quotes, comments, dollar quotes, numbers).
#include "pgrouter/route/sql_key.h"

#include <array>

#include "pgrouter/base/ascii.h"

namespace pgrouter {

namespace {

bool ident_char(char c) {
    return ascii_alnum(c) || c == '_' || c == '$' || static_cast<unsigned char>(c) >= 0x80;
}

bool starts_with_ci(std::string_view s, std::string_view word) {
    if (s.size() < word.size()) return false;
    for (std::size_t i = 0; i < word.size(); ++i) {
        if (ascii_lower(s[i]) != word[i]) return false;
    }
    return s.size() == word.size() || !ident_char(s[word.size()]);
}

// `word` (lower case, with an underscore at `under`) anywhere in s, any case: looked for
// only around the underscores, which memchr() finds a vector at a time.
bool contains_ci(std::string_view s, std::string_view word, std::size_t under) {
    for (std::size_t p = s.find('_', under); p != std::string_view::npos; p = s.find('_', p + 1)) {
        if (starts_with_ci(s.substr(p - under), word)) return true;
    }
    return false;
}

bool normalisable(std::string_view sql) {
    std::size_t i = 0;
    while (i < sql.size() && (ascii_space(sql[i]) || sql[i] == '(')) {
        ++i;
    }
    std::string_view rest = sql.substr(i);
    static constexpr std::array<std::string_view, 7> kWords{"select", "with",   "insert", "update",
                                                            "delete", "values", "table"};
    bool data = false;
    for (std::string_view w : kWords) data = data || starts_with_ci(rest, w);
    return data && !contains_ci(sql, "set_config", 3) && !contains_ci(sql, "current_setting", 7);
}

}  // namespace

void sql_cache_key(std::string_view sql, std::string& key) {
    key.clear();
    if (!normalisable(sql)) {
        key.assign(sql);
        return;
    }
    std::size_t i = 0;
    const std::size_t n = sql.size();
    auto verbatim_rest = [&] {
        key.append(sql.substr(i));
        i = n;
    };
    // The characters that may start a construct; the runs between them are copied whole.
    static constexpr auto kSpecial = [] {
        std::array<bool, 256> t{};
        for (unsigned char c : std::string_view("-/\"$'0123456789")) t[c] = true;
        return t;
    }();
    while (i < n) {
        std::size_t run = i;
        while (run < n && !kSpecial[static_cast<unsigned char>(sql[run])]) ++run;
        if (run > i) {
            key.append(sql.substr(i, run - i));
            i = run;
            if (i == n) break;
        }
        char c = sql[i];
        char next = i + 1 < n ? sql[i + 1] : '\0';
        bool after_ident = i > 0 && ident_char(sql[i - 1]);
        if (c == '-' && next == '-') {  // comment to end of line, kept
            std::size_t end = sql.find('\n', i);
            end = end == std::string_view::npos ? n : end;
            key.append(sql.substr(i, end - i));
            i = end;
        } else if (c == '/' && next == '*') {  // block comment (nests), kept
            std::size_t j = i + 2;
            int depth = 1;
            while (j < n && depth > 0) {
                if (sql[j] == '/' && j + 1 < n && sql[j + 1] == '*') {
                    ++depth;
                    j += 2;
                } else if (sql[j] == '*' && j + 1 < n && sql[j + 1] == '/') {
                    --depth;
                    j += 2;
                } else {
                    ++j;
                }
            }
            if (depth > 0) return verbatim_rest();
            key.append(sql.substr(i, j - i));
            i = j;
        } else if (c == '"') {  // quoted identifier, kept
            std::size_t j = i + 1;
            while (j < n && !(sql[j] == '"' && (j + 1 >= n || sql[j + 1] != '"'))) {
                j += sql[j] == '"' ? 2 : 1;
            }
            if (j >= n) return verbatim_rest();
            key.append(sql.substr(i, j + 1 - i));
            i = j + 1;
        } else if (c == '$' && !after_ident) {  // $n parameter or $tag$ dollar quote, kept
            std::size_t j = i + 1;
            while (j < n && (ascii_alnum(sql[j]) || sql[j] == '_')) {
                ++j;
            }
            if (j < n && sql[j] == '$') {
                std::string_view tag = sql.substr(i, j + 1 - i);
                std::size_t end = sql.find(tag, j + 1);
                if (end == std::string_view::npos) return verbatim_rest();
                key.append(sql.substr(i, end + tag.size() - i));
                i = end + tag.size();
            } else {
                key.append(sql.substr(i, j - i));
                i = j;
            }
        } else if (c == '\'') {  // string literal → '?'
            bool escapes = i > 0 && (sql[i - 1] == 'E' || sql[i - 1] == 'e') &&
                           !(i > 1 && ident_char(sql[i - 2]));
            std::size_t j = i + 1;
            for (;;) {
                if (j >= n) return verbatim_rest();
                if (escapes && sql[j] == '\\') {
                    j += 2;
                } else if (sql[j] == '\'' && j + 1 < n && sql[j + 1] == '\'') {
                    j += 2;
                } else if (sql[j] == '\'') {
                    break;
                } else {
                    ++j;
                }
            }
            key += "'?'";
            i = j + 1;
        } else if (ascii_digit(c) && !after_ident) {  // number → ?
            std::size_t j = i;
            while (j < n && (ascii_alnum(sql[j]) || sql[j] == '.' || sql[j] == '_')) {
                bool exponent_sign = (sql[j] == 'e' || sql[j] == 'E') && j + 1 < n &&
                                     (sql[j + 1] == '+' || sql[j + 1] == '-');
                j += exponent_sign ? 2 : 1;
            }
            key += '?';
            i = j;
        } else {
            key += c;
            ++i;
        }
    }
}

}  // namespace pgrouter
