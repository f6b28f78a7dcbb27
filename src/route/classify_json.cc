// The classifier's JSON reader (see classify_json.h): an explicit stack instead of
// recursion, views instead of copies. Decoding of string escapes happens only on demand,
// in Json::string(), for the few values the rules compare.
#include "classify_json.h"

namespace pgrouter::json {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Reads 4 hex digits at raw[i]; -1 when malformed.
long hex4(std::string_view raw, std::size_t i) {
    if (i + 4 > raw.size()) return -1;
    long v = 0;
    for (std::size_t k = 0; k < 4; ++k) {
        int d = hex_digit(raw[i + k]);
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

class Reader {
  public:
    Reader(std::string_view s, std::vector<JNode>& nodes) : s_(s), nodes_(nodes) {}

    bool run() {
        struct Frame {
            std::uint32_t node;
            std::uint32_t last;  // last child so far
            bool object;
        };
        std::vector<Frame> stack;
        std::string_view key;
        for (;;) {
            // A value is expected here, named `key` when its parent is an object.
            skip_space();
            if (p_ >= s_.size()) return false;
            auto idx = static_cast<std::uint32_t>(nodes_.size());
            nodes_.push_back(JNode{});
            nodes_[idx].key = key;
            if (!stack.empty()) {
                Frame& top = stack.back();
                if (top.last == kNone) {
                    nodes_[top.node].first = idx;
                } else {
                    nodes_[top.last].next = idx;
                }
                top.last = idx;
            }
            char c = s_[p_];
            bool opened = false;
            if (c == '{' || c == '[') {
                ++p_;
                nodes_[idx].type = c == '{' ? JType::Object : JType::Array;
                stack.push_back(Frame{idx, kNone, c == '{'});
                skip_space();
                if (p_ < s_.size() && s_[p_] == (c == '{' ? '}' : ']')) {
                    ++p_;
                    stack.pop_back();
                } else {
                    opened = true;
                }
            } else if (c == '"') {
                nodes_[idx].type = JType::String;
                if (!string_token(nodes_[idx].text)) return false;
            } else if (literal("true")) {
                nodes_[idx].type = JType::True;
            } else if (literal("false")) {
                nodes_[idx].type = JType::False;
            } else if (literal("null")) {
                nodes_[idx].type = JType::Null;
            } else if (c == '-' || (c >= '0' && c <= '9')) {
                std::size_t start = p_;
                while (p_ < s_.size() &&
                       (s_[p_] == '-' || s_[p_] == '+' || s_[p_] == '.' || s_[p_] == 'e' ||
                        s_[p_] == 'E' || (s_[p_] >= '0' && s_[p_] <= '9'))) {
                    ++p_;
                }
                nodes_[idx].type = JType::Number;
                nodes_[idx].text = s_.substr(start, p_ - start);
            } else {
                return false;
            }
            key = {};
            if (opened) {
                if (stack.back().object && !member_key(key)) return false;
                continue;
            }
            // After a value: a comma, or closing brackets, or the end.
            for (;;) {
                skip_space();
                if (stack.empty()) return p_ == s_.size();
                if (p_ >= s_.size()) return false;
                char d = s_[p_];
                if (d == ',') {
                    ++p_;
                    if (stack.back().object && !member_key(key)) return false;
                    break;
                }
                if (d != (stack.back().object ? '}' : ']')) return false;
                ++p_;
                stack.pop_back();
            }
        }
    }

  private:
    void skip_space() {
        while (p_ < s_.size() && is_space(s_[p_])) ++p_;
    }

    bool literal(std::string_view word) {
        if (s_.substr(p_, word.size()) != word) return false;
        p_ += word.size();
        return true;
    }

    // At an opening quote: the raw contents up to the closing quote.
    bool string_token(std::string_view& out) {
        ++p_;
        std::size_t start = p_;
        while (p_ < s_.size() && s_[p_] != '"') {
            if (s_[p_] == '\\') ++p_;
            ++p_;
        }
        if (p_ >= s_.size()) return false;
        out = s_.substr(start, p_ - start);
        ++p_;
        return true;
    }

    // `"name" :` inside an object.
    bool member_key(std::string_view& out) {
        skip_space();
        if (p_ >= s_.size() || s_[p_] != '"' || !string_token(out)) return false;
        skip_space();
        if (p_ >= s_.size() || s_[p_] != ':') return false;
        ++p_;
        return true;
    }

    std::string_view s_;
    std::vector<JNode>& nodes_;
    std::size_t p_ = 0;
};

}  // namespace

bool Json::parse(std::string_view text) {
    nodes_.clear();
    nodes_.reserve(text.size() / 16 + 4);
    Reader reader(text, nodes_);
    if (!reader.run()) {
        nodes_.clear();
        return false;
    }
    return true;
}

std::uint32_t Json::get(std::uint32_t obj, std::string_view key) const {
    if (obj == kNone || nodes_[obj].type != JType::Object) return kNone;
    for (std::uint32_t c = nodes_[obj].first; c != kNone; c = nodes_[c].next) {
        if (nodes_[c].key == key) return c;
    }
    return kNone;
}

std::string Json::string(std::uint32_t i) const {
    if (i == kNone || nodes_[i].type != JType::String) return {};
    std::string_view raw = nodes_[i].text;
    if (raw.find('\\') == std::string_view::npos) return std::string(raw);
    std::string out;
    out.reserve(raw.size());
    for (std::size_t k = 0; k < raw.size(); ++k) {
        if (raw[k] != '\\' || k + 1 >= raw.size()) {
            out += raw[k];
            continue;
        }
        char e = raw[++k];
        switch (e) {
            case 'b':
                out += '\b';
                break;
            case 'f':
                out += '\f';
                break;
            case 'n':
                out += '\n';
                break;
            case 'r':
                out += '\r';
                break;
            case 't':
                out += '\t';
                break;
            case 'u': {
                long cp = hex4(raw, k + 1);
                if (cp < 0) {
                    out += 'u';
                    break;
                }
                k += 4;
                if (cp >= 0xD800 && cp < 0xDC00 && k + 2 < raw.size() && raw[k + 1] == '\\' &&
                    raw[k + 2] == 'u') {
                    long lo = hex4(raw, k + 3);
                    if (lo >= 0xDC00 && lo < 0xE000) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        k += 6;
                    }
                }
                append_utf8(out, static_cast<std::uint32_t>(cp));
                break;
            }
            default:  // \" \\ \/
                out += e;
                break;
        }
    }
    return out;
}

}  // namespace pgrouter::json
