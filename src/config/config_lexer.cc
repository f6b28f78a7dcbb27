// The syntax layer of pgrouter.conf: tokens, then a tree of statements and blocks. Reports
// strings and braces that do not close; never looks at what a directive means (config.cc).
// Pure and allocation-only: no I/O, no exceptions other than std::bad_alloc.
#include "pgrouter/config/config_lexer.h"

#include <cstddef>
#include <utility>

namespace pgrouter {
namespace {

// pgrouter's grammar nests one level; deeper blocks are errors anyway, and the cap keeps
// recursion bounded on hostile input such as a megabyte of '{'.
constexpr int kMaxDepth = 8;

enum class Tok { Word, String, Bad, LBrace, RBrace, Newline, Semicolon, Eof };

struct Token {
    Tok kind;
    int line;
    std::string text;
};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

bool ends_word(char c) {
    return is_space(c) || c == '\n' || c == ';' || c == '{' || c == '}' || c == '#';
}

class Lexer {
  public:
    Lexer(std::string_view text, std::vector<ConfigSyntaxError>& errors)
        : text_(text), errors_(errors) {}

    std::vector<Token> run() {
        std::vector<Token> out;
        while (pos_ < text_.size()) {
            char c = text_[pos_];
            if (is_space(c)) {
                ++pos_;
            } else if (c == '\n') {
                out.push_back({Tok::Newline, line_, {}});
                ++line_;
                ++pos_;
            } else if (c == '#') {
                while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
            } else if (c == ';') {
                out.push_back({Tok::Semicolon, line_, {}});
                ++pos_;
            } else if (c == '{') {
                out.push_back({Tok::LBrace, line_, {}});
                ++pos_;
            } else if (c == '}') {
                out.push_back({Tok::RBrace, line_, {}});
                ++pos_;
            } else if (c == '"') {
                out.push_back(quoted());
            } else {
                out.push_back(word());
            }
        }
        out.push_back({Tok::Eof, line_, {}});
        return out;
    }

  private:
    Token word() {
        Token t{Tok::Word, line_, {}};
        std::size_t start = pos_;
        while (pos_ < text_.size() && !ends_word(text_[pos_])) ++pos_;
        t.text.assign(text_.substr(start, pos_ - start));
        if (t.text.find('\0') != std::string::npos) {
            errors_.push_back({line_, "unexpected NUL byte"});
            t.kind = Tok::Bad;
        }
        return t;
    }

    // A string ends at its closing quote; reaching the end of the line first is an error,
    // reported on the line where the string began.
    Token quoted() {
        Token t{Tok::String, line_, {}};
        ++pos_;
        while (pos_ < text_.size() && text_[pos_] != '\n') {
            char c = text_[pos_];
            if (c == '"') {
                ++pos_;
                if (t.text.find('\0') != std::string::npos) {
                    errors_.push_back({t.line, "unexpected NUL byte"});
                    t.kind = Tok::Bad;
                }
                return t;
            }
            if (c == '\\' && pos_ + 1 < text_.size() &&
                (text_[pos_ + 1] == '"' || text_[pos_ + 1] == '\\')) {
                t.text.push_back(text_[pos_ + 1]);
                pos_ += 2;
                continue;
            }
            t.text.push_back(c);
            ++pos_;
        }
        errors_.push_back(
            {t.line, "unterminated string (expected '\"' before the end of the line)"});
        t.kind = Tok::Bad;
        return t;
    }

    std::string_view text_;
    std::vector<ConfigSyntaxError>& errors_;
    std::size_t pos_ = 0;
    int line_ = 1;
};

class TreeBuilder {
  public:
    TreeBuilder(std::vector<Token> tokens, std::vector<ConfigSyntaxError>& errors)
        : tokens_(std::move(tokens)), errors_(errors) {}

    std::vector<ConfigStatement> run() {
        std::vector<ConfigStatement> out;
        statements(out, 0, nullptr);
        return out;
    }

  private:
    const Token& peek() const { return tokens_[pos_]; }
    void advance() {
        if (tokens_[pos_].kind != Tok::Eof) ++pos_;
    }

    // Reads statements up to the '}' that closes `owner`'s block (consumed) or the end of the
    // text. Returns whether the block was closed. At top level `owner` is null.
    bool statements(std::vector<ConfigStatement>& out, int depth, const ConfigStatement* owner) {
        for (;;) {
            const Token& t = peek();
            switch (t.kind) {
                case Tok::Newline:
                case Tok::Semicolon:
                    advance();
                    break;
                case Tok::Eof:
                    return false;
                case Tok::RBrace:
                    advance();
                    if (owner != nullptr) return true;
                    errors_.push_back({t.line, "unexpected '}' (no block is open)"});
                    break;
                case Tok::LBrace: {
                    errors_.push_back({t.line, "unexpected '{' (expected a directive name)"});
                    ConfigStatement stray;
                    stray.line = t.line;
                    block(stray, depth);
                    break;
                }
                case Tok::Word:
                case Tok::String:
                case Tok::Bad:
                    statement(out, depth);
                    break;
            }
        }
    }

    void statement(std::vector<ConfigStatement>& out, int depth) {
        ConfigStatement st;
        st.name = peek().text;
        st.line = peek().line;
        bool bad = peek().kind == Tok::Bad;
        advance();
        for (bool more = true; more;) {
            const Token& t = peek();
            switch (t.kind) {
                case Tok::Word:
                case Tok::String:
                    st.args.push_back({t.text, t.line});
                    advance();
                    break;
                case Tok::Bad:
                    bad = true;
                    advance();
                    break;
                case Tok::Semicolon:
                    advance();
                    more = false;
                    break;
                case Tok::Newline: {
                    // Allman style: a '{' on a following line still opens this block.
                    std::size_t ahead = pos_;
                    while (tokens_[ahead].kind == Tok::Newline) ++ahead;
                    if (tokens_[ahead].kind == Tok::LBrace) {
                        pos_ = ahead;
                    } else {
                        advance();
                        more = false;
                    }
                    break;
                }
                case Tok::LBrace:
                    block(st, depth);
                    more = false;
                    break;
                case Tok::RBrace:
                case Tok::Eof:
                    more = false;
                    break;
            }
        }
        if (!bad) out.push_back(std::move(st));
    }

    // At a '{': reads the block into st.block.
    void block(ConfigStatement& st, int depth) {
        st.has_block = true;
        st.block_line = peek().line;
        advance();
        bool closed;
        if (depth + 1 >= kMaxDepth) {
            errors_.push_back({st.block_line, "blocks nested too deeply"});
            closed = skip_block();
        } else {
            closed = statements(st.block, depth + 1, &st);
        }
        if (!closed) {
            std::string what = st.name.empty() ? "block" : "'" + st.name + "' block";
            errors_.push_back({st.block_line, "missing '}' to close the " + what + " opened here"});
        }
    }

    bool skip_block() {
        for (int open = 1; peek().kind != Tok::Eof; advance()) {
            if (peek().kind == Tok::LBrace) ++open;
            if (peek().kind == Tok::RBrace && --open == 0) {
                advance();
                return true;
            }
        }
        return false;
    }

    std::vector<Token> tokens_;
    std::vector<ConfigSyntaxError>& errors_;
    std::size_t pos_ = 0;
};

}  // namespace

ConfigSyntax parse_config_syntax(std::string_view text) {
    ConfigSyntax out;
    std::vector<Token> tokens = Lexer(text, out.errors).run();
    out.statements = TreeBuilder(std::move(tokens), out.errors).run();
    return out;
}

}  // namespace pgrouter
