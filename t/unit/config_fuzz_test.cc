// A fixed-seed fuzz of parse_config: every prefix of the example config and thousands of
// random mutations of it must parse without crashing or throwing, into either a Config or
// errors (never both, never neither), each error inside the file's lines.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "pgrouter/config/config.h"

namespace pgrouter {
namespace {

std::string example_text() {
    for (const char* path : {"etc/pgrouter.conf.example", "../../etc/pgrouter.conf.example"}) {
        std::ifstream in(path);
        if (in) {
            std::ostringstream s;
            s << in.rdbuf();
            return s.str();
        }
    }
    return {};
}

int line_count(const std::string& text) {
    return static_cast<int>(std::count(text.begin(), text.end(), '\n')) + 1;
}

// Returns whether the result keeps parse_config's contract for `text`.
bool well_formed(const std::string& text) {
    ConfigResult r;
    try {
        r = parse_config(text, "fuzz.conf");
    } catch (...) {
        return false;
    }
    if (r.config.has_value() == !r.errors.empty()) return false;
    int lines = line_count(text);
    for (const ConfigError& e : r.errors) {
        if (e.file != "fuzz.conf" || e.line < 0 || e.line > lines || e.message.empty()) {
            return false;
        }
    }
    return true;
}

// Pieces a mutation inserts: the grammar's own punctuation and words, and bytes it never
// expects.
const std::vector<std::string> kPieces = {
    "{",          "}",        ";",      "\n",
    "\"",         "\\",       "#",      " ",
    "[",          "]",        ":",      "*",
    "0",          "65536",    "-1",     "ms",
    "G",          "backend",  "tls",    "default",
    "health",     "lag",      "{{{{",   "}}}}",
    "\r\n",       "\t",       "[::1]:", "99999999999",
    "skipverify", "weight",   "\xff",   std::string(1, '\0'),
    "\"\\\"",     "listen *", "log",    "workers",
};

std::string mutate(std::string text, std::mt19937& rng) {
    auto pick = [&](std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(rng() % n); };
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < edits; ++i) {
        std::size_t at = pick(text.size() + 1);
        switch (rng() % 6) {
            case 0:  // delete a run
                text.erase(at, 1 + pick(8));
                break;
            case 1:  // insert a piece
                text.insert(at, kPieces[pick(kPieces.size())]);
                break;
            case 2:  // overwrite a byte with any byte
                if (at < text.size()) text[at] = static_cast<char>(rng() & 0xff);
                break;
            case 3: {  // duplicate a chunk somewhere else
                std::size_t len = pick(40);
                std::string chunk = text.substr(at, len);
                text.insert(pick(text.size() + 1), chunk);
                break;
            }
            case 4:  // truncate
                text.resize(at);
                break;
            default: {  // swap two bytes
                std::size_t other = pick(text.size() + 1);
                if (at < text.size() && other < text.size()) std::swap(text[at], text[other]);
                break;
            }
        }
    }
    return text;
}

TEST_CASE("config fuzz: every prefix of the example parses cleanly") {
    std::string text = example_text();
    REQUIRE_FALSE(text.empty());
    CHECK(well_formed(text));
    for (std::size_t n = 0; n <= text.size(); ++n) {
        std::string prefix = text.substr(0, n);
        INFO("prefix of " << n << " bytes");
        REQUIRE(well_formed(prefix));
        REQUIRE(well_formed(text.substr(n)));
    }
}

TEST_CASE("config fuzz: random mutations of the example parse cleanly") {
    std::string text = example_text();
    REQUIRE_FALSE(text.empty());
    std::mt19937 rng(20240611);
    int accepted = 0;
    for (int i = 0; i < 5000; ++i) {
        std::string input = mutate(text, rng);
        INFO("mutation " << i << ":\n" << input);
        REQUIRE(well_formed(input));
        accepted += parse_config(input, "fuzz.conf").config.has_value() ? 1 : 0;
    }
    // Some mutations only touch comments or values in range; all-or-nothing would mean the
    // mutator or the parser is broken.
    CHECK(accepted > 0);
    CHECK(accepted < 5000);
}

TEST_CASE("config fuzz: hostile shapes") {
    const std::vector<std::string> inputs = {
        std::string(100000, '{'),
        std::string(100000, '}'),
        std::string(50000, '"'),
        std::string(100000, '\n'),
        std::string(100000, ';'),
        "backend " + std::string(100000, 'a') + ":1",
        "backend h:" + std::string(1000, '9'),
        "health { timeout " + std::string(1000, '9') + "h }",
        std::string(1000, '\\') + "\"",
        "backend h:1 {" + std::string(20, '{') + "lag 1" + std::string(20, '}'),
    };
    for (const std::string& s : inputs) {
        INFO(s.substr(0, 40));
        CHECK(well_formed(s));
        CHECK_FALSE(parse_config(s, "fuzz.conf").config);
    }
}

}  // namespace
}  // namespace pgrouter
